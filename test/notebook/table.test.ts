import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as aq from 'arquero';
import { table } from '../../src/notebook/table.js';
import { formatCompact, formatDuration, formatNumber, formatValue } from '../../src/notebook/format.js';
import { MIME_BUNDLE } from '../../src/notebook/mime.js';

describe('number formatting', () => {
  it('keeps integers exact and gives other numbers four significant digits', () => {
    assert.equal(formatNumber(12345), '12345');
    assert.equal(formatNumber(2.345678), '2.346');
    assert.equal(formatNumber(0.000012346), '1.235e-5');
    assert.equal(formatNumber(123456789.5), '1.235e+8');
    assert.equal(formatNumber(0.5), '0.5');
    assert.equal(formatNumber(NaN), 'NaN');
    assert.equal(formatNumber(-Infinity), '-∞');
  });

  it('formats rates, durations and cells for reading at a glance', () => {
    assert.equal(formatCompact(15321), '15.3k');
    assert.equal(formatCompact(42.42), '42.4');
    assert.equal(formatDuration(3725), '1:02:05');
    assert.equal(formatDuration(65), '1:05');
    assert.equal(formatDuration(NaN), '?');
    assert.equal(formatValue(null), '');
    assert.equal(formatValue({ a: 1 }), '{"a":1}');
    assert.equal(formatValue('x'.repeat(100)).length, 60);
  });
});

describe('table()', () => {
  it('renders an arquero table with numbers right-aligned and a size summary', () => {
    const t = table(aq.table({ step: [1, 2], loss: [2.5, 0.123456], note: ['<b>', 'ok'] }));
    assert.match(t.html, /<table class="dataframe sharelora-table"/);
    assert.match(t.html, /<th style="text-align:right">loss<\/th>/);
    assert.match(t.html, /<th style="text-align:left">note<\/th>/);
    assert.match(t.html, /0\.1235/);
    assert.match(t.html, /&lt;b&gt;/, 'cell text is escaped');
    assert.match(t.html, /2 rows × 3 columns/);
    assert.deepEqual(Object.keys(t[MIME_BUNDLE]().data), ['text/html', 'text/plain']);
    assert.equal(t.text.split('\n')[0], 'step    loss  note', 'numeric headers align right, text left');
  });

  it('truncates long tables to head and tail with a count', () => {
    const t = table(aq.table({ step: Array.from({ length: 100 }, (_, i) => i + 1), loss: Array.from({ length: 100 }, (_, i) => 1 / (i + 1)) }), { limit: 10 });
    assert.equal((t.html.match(/<tr>/g) ?? []).length, 1 + 8 + 1 + 2);
    assert.match(t.html, /⋯ 90 more rows ⋯/);
    assert.match(t.html, /100 rows × 2 columns \(90 rows not shown\)/);
    assert.match(t.text, /^ +99 +0\.0101$/m, 'the tail rows are shown');
  });

  it('accepts records with differing keys, in first-seen column order', () => {
    const t = table([{ a: 1 }, { b: 'x', a: 2 }], { columns: ['b', 'a'] });
    assert.match(t.text, /^b +a$/m);
    assert.throws(() => table([{ a: 1 }], { columns: ['zzz'] }), /no column "zzz"; the columns are a/);
  });

  it('names what it expected when given something else', () => {
    assert.throws(() => table(42), /table\(\): expected an arquero table, an array of records .* got number/);
    assert.throws(() => table([1, 2]), /got an array of number/);
    assert.throws(() => table([{ a: 1 }], { limit: 0 }), /limit must be a positive integer/);
  });
});
