/**
 * Hugging Face `datasets` exports: `Dataset.to_parquet`, `to_json` (JSON Lines,
 * its default) and `to_csv`. The file's columns are kept as they are; the
 * options (or a GLUE preset, or ClassLabel names stored in the Parquet footer)
 * say which of them are text, label or target.
 *
 * Schema: the file's own columns; the label column becomes an int (class index,
 * -1 = unlabelled as in HF's GLUE test splits) or a float for regression, and
 * INT64 values (Parquet) become numbers.
 */
import { extname } from 'node:path';
import { table } from 'arquero';
import { DataError } from '../util/errors.js';
import { checkOptions, optionKeys } from '../util/options.js';
import { GLUE_TASKS, type GlueTask } from './glue.js';
import { parseCsv, readText, type TextRecord } from './delimited.js';
import { describeValue as describe, inferLabelNames, isScore, MAX_LABELS, statedLabelNames, toLabel } from './label-space.js';
import { readParquet } from './parquet.js';
import type { Metric, TaskData, TaskInfo } from './task.js';

export interface HfDatasetOptions {
  /** Use the HF `glue/<task>` column names, label names and metric. */
  glue?: GlueTask;
  /** Input columns; default: every string column except the label, the target and all-number columns. */
  textFields?: string[];
  /** Default `label` when such a column exists. */
  labelField?: string;
  /** Class names; default: ClassLabel names from the Parquet footer, else the classes seen. */
  labelNames?: string[];
  /**
   * Number of classes, when the file has no class names. Without it the
   * classes seen must be exactly 0..max: a class with no example is taken
   * for a stray label and refused.
   */
  numLabels?: number;
  /** Reference-text column, for generation data (e.g. `human_reference`). */
  targetField?: string;
  /** Task id; default the file name. */
  name?: string;
  metrics?: Metric[];
  /** Parquet: give up decoding after this many milliseconds (default 30 s plus 1 s per MB). */
  decodeTimeoutMs?: number;
}

type Row = Record<string, unknown>;
interface Loaded { columns: string[]; rows: Row[]; where: (i: number) => string; classNames?: string[]; floatLabel?: string }

/** arquero compiles column access to `data.<name>`, which for this name reaches Object.prototype instead */
const RESERVED_COLUMNS = ['__proto__'];

/**
 * @example
 * const { table, task } = await readHfDataset('sst2/validation.parquet', { glue: 'sst2' });
 */
export async function readHfDataset(file: string, opts: HfDatasetOptions = {}): Promise<TaskData> {
  checkOptions('readHfDataset', opts, optionKeys<HfDatasetOptions>()(['glue', 'textFields', 'labelField', 'labelNames', 'targetField', 'name', 'metrics', 'numLabels', 'decodeTimeoutMs']));
  const ext = extname(file).toLowerCase();
  const loaded = ext === '.parquet' ? await loadParquet(file, opts.decodeTimeoutMs)
    : ext === '.jsonl' || ext === '.json' || ext === '.ndjson' ? loadJson(file)
    : ext === '.csv' || ext === '.tsv' ? loadCsv(file, ext === '.tsv' ? '\t' : ',')
    : undefined;
  if (!loaded) throw new DataError(file, `unsupported extension "${ext}"; expected .parquet, .jsonl, .json, .csv or .tsv`);
  const { rows, where, columns } = loaded;
  if (rows.length === 0) throw new DataError(file, 'empty split: no rows');
  for (const [j, c] of columns.entries()) {
    if (RESERVED_COLUMNS.includes(c)) throw new DataError(file, `column "${c}" cannot be a table column (its name is reserved in JavaScript objects); rename the column`);
    if (columns.indexOf(c) !== j) throw new DataError(file, `column "${c}" appears twice; expected unique column names`);
  }

  const preset = opts.glue ? GLUE_TASKS[opts.glue] : undefined;
  if (opts.glue && !preset) throw new RangeError(`unknown GLUE task "${opts.glue}"`);
  const labelField = opts.labelField ?? (preset || columns.includes('label') ? 'label' : undefined);
  const targetField = opts.targetField;
  const textFields = opts.textFields ?? preset?.text.map(([, c]) => c)
    ?? columns.filter((c) => c !== labelField && c !== targetField && isTextColumn(rows, c));
  if (textFields.length === 0) throw new DataError(file, `no text column found; pass textFields (columns: ${JSON.stringify(columns)})`);
  for (const c of [...textFields, ...(labelField ? [labelField] : []), ...(targetField ? [targetField] : [])]) {
    if (!columns.includes(c)) throw new DataError(file, `missing column "${c}"; the file has ${JSON.stringify(columns)}`, where(0));
  }

  const data = new Map<string, unknown[]>(columns.map((c) => [c, []]));
  rows.forEach((row, i) => {
    for (const c of columns) {
      if (!Object.hasOwn(row, c)) throw new DataError(file, `missing field "${c}"`, where(i));
      data.get(c)!.push(typeof row[c] === 'bigint' ? Number(row[c]) : row[c]);
    }
    for (const c of [...textFields, ...(targetField ? [targetField] : [])]) {
      if (typeof row[c] !== 'string') throw new DataError(file, `field "${c}" is ${describe(row[c])}; expected a string`, where(i));
    }
  });

  let kind: TaskInfo['kind'] = targetField ? 'generation' : 'classification';
  let labelNames = opts.labelNames ?? preset?.labelNames ?? loaded.classNames;
  if (opts.numLabels !== undefined) {
    labelNames = statedLabelNames(opts.numLabels, labelNames, opts.labelNames ? 'labelNames' : preset ? `the glue/${opts.glue} preset` : `${file}'s ClassLabel feature`);
  }
  if (labelField) {
    // A float label is a score: CSV gives it as a string, Parquet also says so in its features.
    const isRegression = preset ? !preset.fileLabels : loaded.floatLabel === labelField || data.get(labelField)!.some(isScore);
    if (isRegression) kind = 'regression';
    const labels = data.get(labelField)!.map((v, i) => toLabel(file, where(i), labelField, v, isRegression, labelNames));
    data.set(labelField, labels);
    if (!isRegression && !labelNames) labelNames = inferLabelNames(file, labelField, labels, where);
  }
  const task: TaskInfo = {
    name: opts.name ?? (opts.glue ? `glue/${opts.glue}` : file),
    kind,
    description: preset?.description ?? `Hugging Face dataset export ${file}`,
    textFields,
    ...(labelField ? { labelField } : {}),
    ...(labelNames && kind === 'classification' ? { labelNames } : {}),
    ...(targetField ? { targetField } : {}),
    metrics: opts.metrics ?? preset?.metrics ?? (kind === 'generation' ? ['bleu', 'rouge-l'] : kind === 'regression' ? ['pearson', 'spearman'] : ['accuracy']),
    source: file,
  };
  return { table: table(Object.fromEntries(data)), task };
}

/** A string column that is not just numbers written as text (CSV's `idx`, ids). */
function isTextColumn(rows: Row[], c: string): boolean {
  const sample = rows.slice(0, 100).map((r) => r[c]);
  return sample.every((v) => typeof v === 'string') && !sample.every((v) => /^\s*-?\d+(\.\d+)?\s*$/.test(v as string));
}

async function loadParquet(file: string, timeoutMs?: number): Promise<Loaded> {
  const { columns, rows, keyValue } = await readParquet(file, { timeoutMs });
  // rows as null-prototype records: a column named like an Object.prototype member stays a column
  const records = rows.map((r) => {
    const rec: Row = Object.create(null);
    columns.forEach((c, j) => (rec[c] = r[j]));
    return rec;
  });
  return { columns, rows: records, where: (i) => `row ${i + 1}`, ...classLabelNames(file, keyValue) };
}

/** `datasets` stores its Features as JSON under the footer key "huggingface"; ClassLabel carries the names. */
function classLabelNames(file: string, kv: Array<{ key: string; value?: string }> | undefined): { classNames?: string[]; floatLabel?: string } {
  const raw = kv?.find((e) => e.key === 'huggingface')?.value;
  if (!raw) return {};
  try {
    const features = (JSON.parse(raw) as { info?: { features?: Record<string, { _type?: string; names?: string[]; dtype?: string }> } }).info?.features ?? {};
    const label = Object.values(features).find((f) => f?._type === 'ClassLabel' && Array.isArray(f.names));
    const float = Object.entries(features).find(([, f]) => f?._type === 'Value' && /^float/.test(f.dtype ?? ''));
    if (label?.names && (label.names.length > MAX_LABELS || !label.names.every((n) => typeof n === 'string'))) {
      throw new DataError(file, `the footer's ClassLabel names are ${label.names.length > MAX_LABELS ? `${label.names.length} names, over the ${MAX_LABELS}-class limit` : 'not all strings'}; expected a list of class names`);
    }
    return { ...(label?.names ? { classNames: label.names } : {}), ...(float ? { floatLabel: float[0] } : {}) };
  } catch (e) {
    if (e instanceof DataError) throw e;
    return {};
  }
}

function loadJson(file: string): Loaded {
  const text = readText(file);
  // `to_json` writes JSON Lines; a hand-made export may be one array.
  if (text.trimStart().startsWith('[')) {
    let rows: unknown;
    try {
      rows = JSON.parse(text);
    } catch (e) {
      throw new DataError(file, `invalid JSON (${(e as Error).message})`);
    }
    const arr = rows as unknown[];
    arr.forEach((r, i) => checkObject(file, r, `record ${i + 1}`));
    return { columns: arr.length ? Object.keys(arr[0] as Row) : [], rows: arr as Row[], where: (i) => `record ${i + 1}` };
  }
  const rows: Row[] = [];
  const lines: number[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch (e) {
      throw new DataError(file, `invalid JSON (${(e as Error).message})`, `line ${i + 1}`);
    }
    checkObject(file, r, `line ${i + 1}`);
    rows.push(r as Row);
    lines.push(i + 1);
  });
  return { columns: rows.length ? Object.keys(rows[0]!) : [], rows, where: (i) => `line ${lines[i] ?? '?'}` };
}

function checkObject(file: string, r: unknown, where: string): void {
  if (r === null || typeof r !== 'object' || Array.isArray(r)) throw new DataError(file, `expected a JSON object, found ${describe(r)}`, where);
}

function loadCsv(file: string, delimiter: string): Loaded {
  const records = parseCsv(readText(file), file, delimiter);
  const head = records[0];
  if (!head) throw new DataError(file, 'empty file: no header');
  const rows = records.slice(1).map((rec: TextRecord) => {
    if (rec.fields.length !== head.fields.length) {
      throw new DataError(file, `expected ${head.fields.length} fields (${head.fields.join(', ')}), found ${rec.fields.length}`, `line ${rec.line}`);
    }
    const row: Row = Object.create(null);
    head.fields.forEach((name, j) => (row[name] = rec.fields[j]));
    return row;
  });
  return { columns: head.fields, rows, where: (i) => `line ${records[i + 1]?.line ?? '?'}` };
}
