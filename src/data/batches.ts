/**
 * A whole split → length-bucketed batches, choosing the collation from the
 * task kind, so a notebook goes from `datasets.x()` to training input in one call.
 */
import { bucketByLength } from './bucket.js';
import { blocksToBatch, encodeCausal, packSequences, padCausal, padOptions, padRows, type PadOptions } from './collate.js';
import type { HostBatch } from './batch.js';
import { checkOptions, optionKeys } from '../util/options.js';
import { DataError } from '../util/errors.js';
import { seededOrder } from './split.js';
import type { TaskData } from './task.js';
import type { TextTokenizer } from './tokenizer.js';

export interface TaskBatchOptions extends PadOptions {
  batchSize: number;
  /** Tokens per row; for language modelling, the block size (default 128). */
  maxLength?: number;
  seed?: number;
  /** Shuffle batch order (default true). */
  shuffle?: boolean;
  /** Generation tasks: no loss on the prompt (default true). */
  maskPrompt?: boolean;
}

function column(data: TaskData, name: string): unknown[] {
  const t = data.table;
  if (!t.columnNames().includes(name)) {
    throw new DataError(data.task.source, `task ${data.task.name} names column "${name}", which the table lacks (columns: ${t.columnNames().join(', ')})`);
  }
  return t.array(name) as unknown[];
}

export function taskBatches(data: TaskData, tokenizer: TextTokenizer, opts: TaskBatchOptions): HostBatch[] {
  checkOptions('taskBatches', opts, optionKeys<TaskBatchOptions>()(['padTo', 'padToMultipleOf', 'batchSize', 'maxLength', 'seed', 'shuffle', 'maskPrompt']));
  const { task } = data;
  const seed = opts.seed ?? 0;
  const bucket = (lengths: number[]) => bucketByLength(lengths, opts.batchSize, { seed, shuffle: opts.shuffle ?? true });
  if (task.kind === 'classification' || task.kind === 'regression') {
    if (!task.labelField) throw new DataError(task.source, `task ${task.name} has no labelField`);
    if (task.textFields.length < 1 || task.textFields.length > 2) throw new RangeError(`task ${task.name}: expected 1 or 2 text fields, got ${task.textFields.length}`);
    const a = column(data, task.textFields[0]!) as string[];
    const b = task.textFields[1] === undefined ? undefined : (column(data, task.textFields[1]) as string[]);
    const labels = column(data, task.labelField) as number[];
    const rows = a.map((t, i) => tokenizer.encodeTruncated(t, b?.[i], opts.maxLength));
    return bucket(rows.map((r) => r.length)).map((idx) => ({
      ...padRows(idx.map((i) => rows[i]!), tokenizer.padId, padOptions(opts)),
      labels: idx.map((i) => labels[i]!),
    }));
  }
  if (task.kind === 'generation') {
    if (!task.targetField) throw new DataError(task.source, `task ${task.name} has no targetField`);
    const prompts = column(data, task.textFields[0]!) as string[];
    const targets = column(data, task.targetField) as string[];
    const rows = prompts.map((p, i) => encodeCausal(tokenizer, { prompt: p, target: targets[i]! }, { maxLength: opts.maxLength, maskPrompt: opts.maskPrompt }));
    return bucket(rows.map((r) => r.ids.length)).map((idx) => padCausal(idx.map((i) => rows[i]!), tokenizer.padId, padOptions(opts)));
  }
  // Language modelling: pack documents into full blocks, no padding at all.
  const texts = column(data, task.textFields[0]!) as string[];
  const blocks = packSequences(texts.map((t) => tokenizer.encode(t, { addSpecialTokens: false })), opts.maxLength ?? 128, tokenizer.eosId);
  const ordered = opts.shuffle ?? true ? seededOrder(blocks, (_, i) => String(i), seed) : blocks;
  const out: HostBatch[] = [];
  for (let i = 0; i < ordered.length; i += opts.batchSize) out.push(blocksToBatch(ordered.slice(i, i + opts.batchSize)));
  return out;
}
