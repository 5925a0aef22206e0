/** The `datasets` namespace object: every offline data set behind one name for notebooks. */
import { brown } from './brown.js';
import { imdb } from './imdb.js';
import { mobyDick } from './moby-dick.js';
import { sotu } from './sotu.js';
import { spamAssassin } from './spam.js';
import { transferPairs } from './transfer.js';
import { wordnetDefinitions, wordnetSupersense } from './wordnet.js';
import { readGlue } from './glue.js';
import { readHfDataset } from './hf-export.js';
import { readE2E } from './e2e.js';
import { readAlpaca } from './alpaca.js';

/**
 * @example
 * const { table, task } = await datasets.imdb({ split: 'train', limit: 2000 });
 * const pair = datasets.transferPairs.spamRelease;
 * const src = await pair.source({ split: 'train' });
 */
export const datasets = {
  imdb,
  spamAssassin,
  sotu,
  mobyDick,
  brown,
  wordnetSupersense,
  wordnetDefinitions,
  transferPairs,
  /** The generation task chosen for the notebooks. */
  generation: wordnetDefinitions,
  glue: readGlue,
  hf: readHfDataset,
  e2e: readE2E,
  alpaca: readAlpaca,
};
