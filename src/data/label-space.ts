/**
 * Class labels read from a data file. A head with one output per class is
 * allocated from the largest label, so the label space is checked before it
 * becomes a number of classes: a stray "7" in a binary data set, or a label
 * of 1e9, is an error that names the row, not an 8-class or billion-class task.
 */
import { parseDecimal } from './decimal.js';
import { DataError } from '../util/errors.js';

/** The bound a model head's num_labels has (src/models/config.ts). */
export const MAX_LABELS = 100_000;

export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  // Parquet gives INT64 as bigint, which JSON.stringify refuses
  return `${typeof v} ${typeof v === 'bigint' ? String(v) : JSON.stringify(v)?.slice(0, 40)}`;
}

/** A label cell as a score (regression) or a class index, -1 meaning unlabelled as in HF's GLUE test splits. */
export function toLabel(file: string, where: string, field: string, v: unknown, regression: boolean, names?: readonly string[]): number {
  let x = v;
  if (typeof x === 'bigint') x = Number(x);
  // CSV gives strings; a class may also be written by name
  if (typeof x === 'string') {
    const named = names?.indexOf(x) ?? -1;
    x = named >= 0 ? named : parseDecimal(x) ?? NaN;
  }
  if (typeof x === 'boolean') x = x ? 1 : 0;
  if (typeof x !== 'number' || !Number.isFinite(x)) {
    throw new DataError(file, `label field "${field}" is ${describeValue(v)}; expected ${regression ? 'a decimal number' : 'a class index or name'}`, where);
  }
  if (regression) return x;
  if (!Number.isInteger(x) || x < -1 || (names && x >= names.length)) {
    throw new DataError(file, `unknown label ${typeof v === 'string' ? JSON.stringify(v) : String(v)} in "${field}"; expected -1 (unlabelled) or 0..${names ? names.length - 1 : 'n'}${names ? ` (${names.slice(0, 20).join(', ')}${names.length > 20 ? ', …' : ''})` : ''}`, where);
  }
  return x;
}

/** Whether a label cell holds a non-integer number (a score, so the task is regression). */
export function isScore(v: unknown): boolean {
  const x = typeof v === 'string' ? parseDecimal(v) : v;
  return typeof x === 'number' && Number.isFinite(x) && !Number.isInteger(x);
}

/** `numLabels` as the caller gave it, checked, with the names it implies. */
export function statedLabelNames(numLabels: number, names: readonly string[] | undefined, namesFrom: string): string[] {
  if (!Number.isSafeInteger(numLabels) || numLabels < 1 || numLabels > MAX_LABELS) {
    throw new RangeError(`numLabels must be an integer from 1 to ${MAX_LABELS}, got ${numLabels}`);
  }
  if (names && names.length !== numLabels) throw new RangeError(`numLabels is ${numLabels} but ${namesFrom} gives ${names.length} class names`);
  return names ? [...names] : Array.from({ length: numLabels }, (_, k) => String(k));
}

/**
 * Class names "0".."max" for class indices read without names, refused when
 * some class below the largest has no example (a gap, usually a stray or
 * mistyped label) or when there would be more than MAX_LABELS classes.
 */
export function inferLabelNames(file: string, field: string, labels: readonly number[], where: (i: number) => string): string[] {
  const seen = new Set<number>();
  let top = -1;
  labels.forEach((v, i) => {
    if (v < 0) return;
    seen.add(v);
    if (top < 0 || v > labels[top]!) top = i;
  });
  if (top < 0) return [];
  const max = labels[top]!;
  if (max >= MAX_LABELS) {
    throw new DataError(file, `label ${max} in "${field}" would make ${max + 1} classes, over the ${MAX_LABELS}-class limit; expected class indices 0..n-1`, where(top));
  }
  if (seen.size < max + 1) {
    let gap = 0;
    while (seen.has(gap)) gap++;
    const i = labels.findIndex((v) => v > gap);
    const classes = [...seen].sort((a, b) => a - b);
    const shown = classes.length > 12 ? `${classes.slice(0, 12).join(', ')}, …` : classes.join(', ');
    throw new DataError(file, `label ${labels[i]} in "${field}" leaves class ${gap} without any example (classes seen: ${shown}); a label space with gaps is refused: fix the label, or pass numLabels: ${max + 1} (or labelNames) if ${max + 1} classes is right`, where(i));
  }
  return Array.from({ length: max + 1 }, (_, k) => String(k));
}
