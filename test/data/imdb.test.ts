import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { datasets } from '../../src/data/index.js';

/** Measured with the default seed (42); README.md quotes the same numbers. */
const COUNTS = { train: [20003, 20003], validation: [2499, 2501], test: [2498, 2496] } as const;

function labelCounts(labels: number[]): number[] {
  return [labels.filter((l) => l === 0).length, labels.filter((l) => l === 1).length];
}

describe('datasets.imdb', () => {
  it('has 50,000 balanced reviews split 80/10/10 by label', async () => {
    const all = await datasets.imdb({ split: 'all' });
    assert.equal(all.table.numRows(), 50_000);
    assert.deepEqual(labelCounts(all.table.array('label') as number[]), [25_000, 25_000]);
    for (const split of ['train', 'validation', 'test'] as const) {
      const { table } = await datasets.imdb({ split });
      assert.deepEqual(labelCounts(table.array('label') as number[]), COUNTS[split], split);
    }
  });

  it('keeps duplicated reviews inside one split', async () => {
    const seen = new Map<string, string>();
    for (const split of ['train', 'validation', 'test'] as const) {
      for (const text of (await datasets.imdb({ split })).table.array('text') as string[]) {
        const other = seen.get(text);
        assert.ok(other === undefined || other === split, `a review is in ${other} and ${split}`);
        seen.set(text, split);
      }
    }
    assert.ok(seen.size < 50_000, 'the package does contain duplicates');
  });

  it('limit takes a fixed, seeded sample', async () => {
    const a = await datasets.imdb({ split: 'validation', limit: 5 });
    const b = await datasets.imdb({ split: 'validation', limit: 5 });
    const c = await datasets.imdb({ split: 'validation', limit: 5, seed: 7 });
    assert.deepEqual(a.table.array('id'), b.table.array('id'));
    assert.notDeepEqual(a.table.array('id'), c.table.array('id'));
    assert.deepEqual(a.table.columnNames(), ['text', 'label', 'id']);
    assert.deepEqual(a.task.labelNames, ['negative', 'positive']);
  });

  it('turns HTML line breaks into newlines', async () => {
    const texts = (await datasets.imdb({ split: 'train', limit: 2000 })).table.array('text') as string[];
    assert.ok(texts.every((t) => !/<br\s*\/?>/i.test(t)));
    assert.ok(texts.some((t) => t.includes('\n')));
  });

  it('rejects bad options', async () => {
    await assert.rejects(datasets.imdb({ limit: -1 }), /imdb: limit must be a non-negative integer/);
    await assert.rejects(datasets.imdb({ split: 'dev' as never }), /unknown split "dev"/);
  });
});
