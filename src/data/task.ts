import type { ColumnTable } from 'arquero';

export type TaskKind = 'classification' | 'regression' | 'generation' | 'language-modeling';

/** Metric names as the GLUE / E2E / HF `evaluate` papers report them. */
export type Metric =
  | 'accuracy' | 'f1' | 'macro-f1' | 'matthews' | 'pearson' | 'spearman'
  | 'bleu' | 'nist' | 'meteor' | 'rouge-l' | 'cider' | 'perplexity';

/** What a table means: which columns go into the model, what comes out, how it is scored. */
export interface TaskInfo {
  /** Short id, e.g. `glue/sst2`, `imdb`, `wordnet/definition`. */
  name: string;
  kind: TaskKind;
  description: string;
  /** Input text columns in encoding order; two for sentence-pair tasks. */
  textFields: string[];
  /** Integer class (or float score for regression) column; -1 marks an unlabelled row. */
  labelField?: string;
  /** `labelNames[i]` is the name of class i. */
  labelNames?: string[];
  /** Column holding the reference text of a generation task. */
  targetField?: string;
  /** Primary metric first. */
  metrics: Metric[];
  /** File or package the rows came from. */
  source: string;
}

/** A split of a data set: an arquero table plus what its columns mean. */
export interface TaskData {
  table: ColumnTable;
  task: TaskInfo;
}

export type SplitName = 'train' | 'validation' | 'test';
