import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hash32, seededOrder, splitRows } from '../../src/data/index.js';

describe('splitRows', () => {
  const GOLDEN_TEST_IDS = [2, 26, 34, 74, 81];
  const rows = Array.from({ length: 1000 }, (_, i) => ({ id: i, label: i % 4 === 0 ? 1 : 0, doc: `d${Math.floor(i / 5)}` }));

  it('is a pure function of (keys, seed): golden values guard the documented counts', () => {
    // If these change, every split count in src/data/README.md changes too.
    assert.deepEqual([hash32(''), hash32('abc'), hash32('abc', 42), hash32('imdb')], [3301261163, 2875555059, 1185875212, 2263938520]);
    const byId = { group: (r: { id: number }) => String(r.id) };
    const ids = (list: Array<{ id: number }>) => list.map((r) => r.id).sort((x, y) => x - y);
    const a = splitRows(rows, { seed: 42, ...byId });
    const b = splitRows([...rows].reverse(), { seed: 42, ...byId });
    assert.deepEqual(ids(a.test), ids(b.test));
    assert.deepEqual(ids(a.test).slice(0, 5), GOLDEN_TEST_IDS);
    assert.notDeepEqual(ids(splitRows(rows, { seed: 43, ...byId }).test), ids(a.test));
  });

  it('cuts exact fractions per stratum and keeps groups together', () => {
    const s = splitRows(rows, { seed: 1, group: (r) => r.doc, stratum: (r) => String(r.label) });
    assert.equal(s.train.length + s.validation.length + s.test.length, 1000);
    const docSplit = new Map<string, string>();
    for (const name of ['train', 'validation', 'test'] as const) {
      for (const r of s[name]) {
        assert.ok((docSplit.get(`${r.label}/${r.doc}`) ?? name) === name);
        docSplit.set(`${r.label}/${r.doc}`, name);
      }
    }
    // Label 1 rows: 250 rows in 200 doc groups → 20 groups each in validation and test.
    assert.equal(new Set(s.validation.filter((r) => r.label === 1).map((r) => r.doc)).size, 20);
  });

  it('gives a stratum of 3+ groups at least one validation and test group', () => {
    const few = [...rows.slice(0, 100), { id: 1000, label: 9, doc: 'x' }, { id: 1001, label: 9, doc: 'y' }, { id: 1002, label: 9, doc: 'z' }];
    const s = splitRows(few, { seed: 3, stratum: (r) => String(r.label) });
    for (const name of ['train', 'validation', 'test'] as const) assert.equal(s[name].filter((r) => r.label === 9).length, 1);
  });

  it('shuffles rows within a split and validates fractions', () => {
    const s = splitRows(rows, { seed: 5 });
    const ids = s.train.map((r) => r.id);
    assert.notDeepEqual(ids, [...ids].sort((x, y) => x - y));
    assert.throws(() => splitRows(rows, { seed: 1, fractions: { train: 0.5, validation: 0.1, test: 0.1 } }), /sum to 1/);
    assert.deepEqual(seededOrder(['a', 'b', 'c'], (x) => x, 9), seededOrder(['c', 'b', 'a'], (x) => x, 9));
  });
});
