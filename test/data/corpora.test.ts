import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BROWN_GENRES, datasets, detokenize } from '../../src/data/index.js';

async function sizes(load: (o: { split: 'train' | 'validation' | 'test' }) => Promise<{ table: { numRows(): number } }>): Promise<number[]> {
  const out: number[] = [];
  for (const split of ['train', 'validation', 'test'] as const) out.push((await load({ split })).table.numRows());
  return out;
}

describe('language-modelling corpora', () => {
  it('State of the Union: 233 speeches split by speech', async () => {
    assert.deepEqual(await sizes(datasets.sotu), [187, 23, 23]);
    const { table, task } = await datasets.sotu({ split: 'all' });
    assert.equal(task.kind, 'language-modeling');
    assert.equal(table.get('year', 0), 1790);
    assert.equal(table.get('president', table.numRows() - 1), 'Joseph R Biden');
  });

  it('Moby-Dick: 138 chapters (with etymology, extracts, epilogue) in book order', async () => {
    assert.deepEqual(await sizes(datasets.mobyDick), [110, 14, 14]);
    const { table } = await datasets.mobyDick({ split: 'all' });
    assert.deepEqual((table.array('chapter') as string[]).slice(0, 3), ['Etymology', 'Extracts', '1']);
    assert.match(table.get('text', 2) as string, /^Call me Ishmael\./);
  });
});

describe('Brown corpus', () => {
  it('detokenizes form-C tokens', () => {
    assert.equal(detokenize(['``', 'No', ',', "''", 'he', 'said', '(', 'twice', ')', '.']), '"No," he said (twice).');
  });

  it('57,340 sentences in 15 genres, split by file', async () => {
    const { table, task } = await datasets.brown({ split: 'all' });
    assert.equal(table.numRows(), 57_340);
    assert.deepEqual(task.labelNames, Object.values(BROWN_GENRES));
    assert.equal(table.get('text', 0), 'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence" that any irregularities took place.');
    assert.deepEqual(await sizes(datasets.brown), [45_776, 5_651, 5_913]);
    const fileSplit = new Map<string, string>();
    for (const split of ['train', 'validation', 'test'] as const) {
      const files = new Set((await datasets.brown({ split })).table.array('file') as string[]);
      for (const f of files) {
        assert.ok(!fileSplit.has(f), `${f} in two splits`);
        fileSplit.set(f, split);
      }
    }
    assert.equal(fileSplit.size, 500);
  });

  it('press → fiction pair on 3-sentence passages', async () => {
    const pair = datasets.transferPairs.brownPressToFiction;
    assert.deepEqual(await sizes(pair.source), [2_519, 302, 331]);
    assert.deepEqual(await sizes(pair.target), [5_174, 654, 611]);
    const { task } = await pair.target({ split: 'train', limit: 1 });
    assert.deepEqual(task.labelNames, ['fiction', 'mystery', 'science_fiction', 'adventure', 'romance', 'humor']);
    const { table } = await pair.source({ split: 'train', limit: 50 });
    assert.ok((table.array('genre') as string[]).every((g) => ['news', 'editorial', 'reviews'].includes(g)));
  });

  it('rejects unknown genres and bad windows', async () => {
    await assert.rejects(datasets.brown({ genres: ['z' as never] }), /unknown genre "z"/);
    await assert.rejects(datasets.brown({ window: 0 }), /window must be a positive integer/);
  });
});
