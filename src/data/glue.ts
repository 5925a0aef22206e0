/**
 * GLUE as distributed by the benchmark's download script (`glue_data/<Task>/*.tsv`).
 * Column layouts differ per task and per split (test files drop the label and
 * sometimes add `index`), so each task says which header names hold its text and
 * label. Output columns use the Hugging Face `glue` names, so a table read from
 * the TSVs and one read from an HF Parquet export of the same task line up.
 *
 * Schema: one string column per text field (see {@link GLUE_TASKS}), `label`
 * (int class; float score for STS-B; -1 in test files, which have no labels) and
 * `idx` (0-based data row). CoLA's train/dev files have no header: their four
 * columns are source code, label, the author's original mark, sentence.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { table } from 'arquero';
import { parseDecimal } from './decimal.js';
import { DataError } from '../util/errors.js';
import { checkWidth, Header, parseTsv, readText } from './delimited.js';
import type { Metric, TaskData, TaskInfo } from './task.js';

export type GlueTask = 'cola' | 'sst2' | 'mrpc' | 'stsb' | 'qqp' | 'mnli' | 'qnli' | 'rte' | 'wnli';

export interface GlueTaskSpec {
  /** Folder name in glue_data. */
  folder: string;
  /** TSV header name → output column, in encoding order. */
  text: Array<[fileColumn: string, column: string]>;
  /** Header name of the label in train/dev files. */
  label: string;
  /** File label value of class i; undefined for the STS-B regression score. */
  fileLabels?: string[];
  labelNames?: string[];
  metrics: Metric[];
  description: string;
}

const ENTAIL = ['entailment', 'not_entailment'];

export const GLUE_TASKS: Readonly<Record<GlueTask, GlueTaskSpec>> = {
  cola: {
    folder: 'CoLA', text: [['sentence', 'sentence']], label: 'label', fileLabels: ['0', '1'],
    labelNames: ['unacceptable', 'acceptable'], metrics: ['matthews'],
    description: 'Corpus of Linguistic Acceptability: is the sentence grammatical?',
  },
  sst2: {
    folder: 'SST-2', text: [['sentence', 'sentence']], label: 'label', fileLabels: ['0', '1'],
    labelNames: ['negative', 'positive'], metrics: ['accuracy'],
    description: 'Stanford Sentiment Treebank, binary: sentiment of a movie-review phrase.',
  },
  mrpc: {
    folder: 'MRPC', text: [['#1 String', 'sentence1'], ['#2 String', 'sentence2']], label: 'Quality', fileLabels: ['0', '1'],
    labelNames: ['not_equivalent', 'equivalent'], metrics: ['f1', 'accuracy'],
    description: 'Microsoft Research Paraphrase Corpus: are the two news sentences paraphrases?',
  },
  stsb: {
    folder: 'STS-B', text: [['sentence1', 'sentence1'], ['sentence2', 'sentence2']], label: 'score',
    metrics: ['pearson', 'spearman'],
    description: 'Semantic Textual Similarity Benchmark: similarity score from 0 to 5 (regression).',
  },
  qqp: {
    folder: 'QQP', text: [['question1', 'question1'], ['question2', 'question2']], label: 'is_duplicate', fileLabels: ['0', '1'],
    labelNames: ['not_duplicate', 'duplicate'], metrics: ['accuracy', 'f1'],
    description: 'Quora Question Pairs: do the two questions ask the same thing?',
  },
  mnli: {
    folder: 'MNLI', text: [['sentence1', 'premise'], ['sentence2', 'hypothesis']], label: 'gold_label',
    fileLabels: ['entailment', 'neutral', 'contradiction'], labelNames: ['entailment', 'neutral', 'contradiction'],
    metrics: ['accuracy'],
    description: 'Multi-Genre NLI: does the premise entail, contradict or leave open the hypothesis?',
  },
  qnli: {
    folder: 'QNLI', text: [['question', 'question'], ['sentence', 'sentence']], label: 'label', fileLabels: ENTAIL,
    labelNames: ENTAIL, metrics: ['accuracy'],
    description: 'Question NLI (from SQuAD): does the sentence contain the answer to the question?',
  },
  rte: {
    folder: 'RTE', text: [['sentence1', 'sentence1'], ['sentence2', 'sentence2']], label: 'label', fileLabels: ENTAIL,
    labelNames: ENTAIL, metrics: ['accuracy'],
    description: 'Recognizing Textual Entailment: does sentence1 entail sentence2?',
  },
  wnli: {
    folder: 'WNLI', text: [['sentence1', 'sentence1'], ['sentence2', 'sentence2']], label: 'label', fileLabels: ['0', '1'],
    labelNames: ['not_entailment', 'entailment'], metrics: ['accuracy'],
    description: 'Winograd NLI: does the sentence with the pronoun substituted follow?',
  },
};

/** `train`, `dev`, `test`; MNLI has `dev_matched`, `dev_mismatched`, `test_matched`, `test_mismatched`. */
export type GlueSplit = 'train' | 'dev' | 'test' | 'validation' | 'dev_matched' | 'dev_mismatched' | 'test_matched' | 'test_mismatched';

const COLA_HEADERLESS = ['source', 'label', 'original_mark', 'sentence'];

function taskFolder(dir: string, spec: GlueTaskSpec): string {
  const nested = join(dir, spec.folder);
  return existsSync(nested) && statSync(nested).isDirectory() ? nested : dir;
}

function fileName(task: GlueTask, split: GlueSplit): string {
  if (split === 'validation') return task === 'mnli' ? 'dev_matched.tsv' : 'dev.tsv';
  if (task === 'mnli' && (split === 'dev' || split === 'test')) return `${split}_matched.tsv`;
  return `${split}.tsv`;
}

/**
 * Read one split of a GLUE task. `dir` is either `glue_data/` or the task's own folder.
 * @example
 * const { table, task } = readGlue('glue_data', 'mnli', 'dev_matched');
 * task.labelNames; // ['entailment', 'neutral', 'contradiction']
 */
export function readGlue(dir: string, taskName: GlueTask, split: GlueSplit = 'train'): TaskData {
  const spec = GLUE_TASKS[taskName];
  if (!spec) throw new RangeError(`unknown GLUE task "${taskName}"; expected one of ${Object.keys(GLUE_TASKS).join(', ')}`);
  const file = join(taskFolder(dir, spec), fileName(taskName, split));
  if (!existsSync(file)) throw new DataError(file, `no such file: GLUE ${spec.folder} has no "${split}" split here`);
  const records = parseTsv(readText(file));
  // CoLA's train/dev files are the only headerless ones; their first field is a source code such as "gj04".
  const headerless = taskName === 'cola' && records.length > 0 && !records[0]!.fields.includes('sentence');
  const header = new Header(file, headerless ? COLA_HEADERLESS : (records[0]?.fields ?? []));
  const rows = headerless ? records : records.slice(1);
  if (rows.length === 0) throw new DataError(file, 'empty split: no data rows after the header');

  const textIdx = spec.text.map(([col]) => header.column(col));
  // Test files carry no label column; anywhere else a missing label is an error.
  const unlabelled = split.startsWith('test');
  const labelIdx = unlabelled && !header.has(spec.label) ? -1 : header.column(spec.label);
  const columns: Record<string, Array<string | number>> = {};
  for (const [, out] of spec.text) columns[out] = [];
  const labels: number[] = [];
  const idx: number[] = [];
  rows.forEach((rec, i) => {
    checkWidth(file, rec, header.names.length);
    spec.text.forEach(([, out], j) => columns[out]!.push(rec.fields[textIdx[j]!]!));
    labels.push(labelIdx < 0 ? -1 : parseLabel(file, rec.line, rec.fields[labelIdx]!, spec));
    idx.push(i);
  });
  const task: TaskInfo = {
    name: `glue/${taskName}`,
    kind: spec.fileLabels ? 'classification' : 'regression',
    description: spec.description,
    textFields: spec.text.map(([, out]) => out),
    labelField: 'label',
    ...(spec.labelNames ? { labelNames: spec.labelNames } : {}),
    metrics: spec.metrics,
    source: file,
  };
  return { table: table({ ...columns, label: labels, idx }), task };
}

function parseLabel(file: string, line: number, value: string, spec: GlueTaskSpec): number {
  if (!spec.fileLabels) {
    const score = parseDecimal(value);
    if (score === undefined || score < 0 || score > 5) {
      throw new DataError(file, `column "${spec.label}" = ${JSON.stringify(value)}; expected a similarity score from 0 to 5`, `line ${line}`);
    }
    return score;
  }
  const k = spec.fileLabels.indexOf(value);
  if (k < 0) {
    throw new DataError(file, `unknown label ${JSON.stringify(value)} in column "${spec.label}"; expected one of ${JSON.stringify(spec.fileLabels)}`, `line ${line}`);
  }
  return k;
}
