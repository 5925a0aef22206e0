import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { datasets, definitionPrompt, LEX_FILES, wordnetSynsets } from '../../src/data/index.js';

describe('WordNet parsing', () => {
  it('reads all 117,791 synsets with their supersense', () => {
    const all = wordnetSynsets();
    assert.equal(all.length, 117_791);
    const byPos = (p: string) => all.filter((s) => s.pos === p).length;
    assert.deepEqual([byPos('noun'), byPos('verb'), byPos('adjective'), byPos('adverb')], [82_192, 13_789, 18_185, 3_625]);
    assert.equal(LEX_FILES.filter((l) => l.startsWith('noun.')).length, 26);
    assert.equal(LEX_FILES.filter((l) => l.startsWith('verb.')).length, 15);
  });

  it('splits gloss into definition and examples, and resolves hypernyms', () => {
    const breathe = wordnetSynsets().find((s) => s.id === 'v:00001740')!;
    assert.deepEqual(breathe.words, ['breathe', 'take a breath', 'respire', 'suspire']);
    assert.equal(breathe.lexFile, 'verb.body');
    assert.equal(breathe.definition, 'draw air into, and expel out of, the lungs');
    assert.deepEqual(breathe.examples, ['I can breathe better when the air is clean', 'The patient is respiring']);
    const physical = wordnetSynsets().find((s) => s.id === 'n:00001930')!;
    assert.deepEqual(physical.hypernyms, ['entity']);
    assert.equal(definitionPrompt(physical), 'Define physical entity (noun, a kind of entity):');
  });
});

describe('WordNet tasks', () => {
  it('definition generation: 80/10/10 by headword, no headword on both sides', async () => {
    const sizes: number[] = [];
    const heads = new Map<string, string>();
    for (const split of ['train', 'validation', 'test'] as const) {
      const { table, task } = await datasets.wordnetDefinitions({ split });
      assert.equal(task.kind, 'generation');
      sizes.push(table.numRows());
      for (const w of table.array('words') as string[]) {
        const h = w.split(', ')[0]!.toLowerCase();
        assert.ok((heads.get(h) ?? split) === split, `headword "${h}" in two splits`);
        heads.set(h, split);
      }
    }
    assert.deepEqual(sizes, [94_337, 11_575, 11_879]);
    const { table } = await datasets.generation({ split: 'validation', limit: 3 });
    assert.ok((table.get('target', 0) as string).startsWith(' '));
  });

  it('noun → verb supersense pair: 26 and 15 classes, every class in every split', async () => {
    const pair = datasets.transferPairs.wordnetSupersense;
    const expected = { noun: [65_767, 8_176, 8_249], verb: [10_998, 1_376, 1_415] };
    for (const [side, pos, n] of [[pair.source, 'noun', 26], [pair.target, 'verb', 15]] as const) {
      const sizes: number[] = [];
      for (const split of ['train', 'validation', 'test'] as const) {
        const { table, task } = await side({ split });
        assert.equal(task.labelNames!.length, n);
        assert.equal(new Set(table.array('label')).size, n, `${pos} ${split} lacks a class`);
        sizes.push(table.numRows());
      }
      assert.deepEqual(sizes, expected[pos]);
    }
    const { table } = await pair.target({ split: 'train', limit: 1 });
    assert.match(table.get('text', 0) as string, /^[^:]+: ./);
  });

  it('rejects a bad part of speech', async () => {
    await assert.rejects(datasets.wordnetSupersense({ pos: 'adverb' as never }), /pos must be "noun" or "verb"/);
  });
});
