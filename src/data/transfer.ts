/**
 * Source → target pairs for the transfer notebook: adapt on the source task,
 * then fine-tune (or only re-fit the shared part) on the target. Each side is a
 * loader taking the usual {split, limit, seed}.
 */
import { brown } from './brown.js';
import type { LoadOptions } from './loader.js';
import { spamAssassin } from './spam.js';
import type { TaskData } from './task.js';
import { wordnetSupersense } from './wordnet.js';

export interface TransferPair {
  name: string;
  description: string;
  /** Same label space on both sides (domain shift) or a different one (task shift). */
  shift: 'domain' | 'task';
  source: (opts?: LoadOptions) => Promise<TaskData>;
  target: (opts?: LoadOptions) => Promise<TaskData>;
}

export const transferPairs = {
  /** Ham vs spam; release 2002-10-10 → release 2003-02-28 (other mailboxes and spam traps). */
  spamRelease: {
    name: 'spam-release1-to-release2',
    description: 'SpamAssassin ham/spam: train on easy-ham-1 + spam-1 (2002-10-10 release, 17% spam), transfer to easy-ham-2 + spam-2 (2003-02-28 release, 50% spam).',
    shift: 'domain',
    source: (o = {}) => spamAssassin({ ...o, groups: ['easy-ham-1', 'spam-1'] }),
    target: (o = {}) => spamAssassin({ ...o, groups: ['easy-ham-2', 'spam-2'] }),
  },
  /** Noun supersenses (26) → verb supersenses (15): same input format, new label space. */
  wordnetSupersense: {
    name: 'wordnet-noun-to-verb-supersense',
    description: 'WordNet gloss → supersense: 26 noun lexicographer classes (82k synsets) → 15 verb classes (13.8k synsets).',
    shift: 'task',
    source: (o = {}) => wordnetSupersense({ ...o, pos: 'noun' }),
    target: (o = {}) => wordnetSupersense({ ...o, pos: 'verb' }),
  },
  /** Press genres (3) → fiction genres (6), on 3-sentence passages. */
  brownPressToFiction: {
    name: 'brown-press-to-fiction-genre',
    description: 'Brown Corpus genre of a 3-sentence passage: press (news, editorial, reviews) → fiction (general, mystery, science fiction, adventure, romance, humor).',
    shift: 'task',
    source: (o = {}) => brown({ ...o, genres: ['a', 'b', 'c'], window: 3 }),
    target: (o = {}) => brown({ ...o, genres: ['k', 'l', 'm', 'n', 'p', 'r'], window: 3 }),
  },
} satisfies Record<string, TransferPair>;
