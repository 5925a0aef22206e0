/** Learning-rate multipliers with Hugging Face's formulas (get_*_schedule_with_warmup), by optimizer step (0-based). */
export type ScheduleName = 'constant' | 'linear' | 'cosine';
export const SCHEDULES: readonly ScheduleName[] = ['constant', 'linear', 'cosine'];

export function lrMultiplier(kind: ScheduleName, step: number, warmup: number, total: number): number {
  if (step < warmup) return step / Math.max(1, warmup);
  if (kind === 'constant') return 1;
  const progress = (step - warmup) / Math.max(1, total - warmup);
  if (kind === 'linear') return Math.max(0, (total - step) / Math.max(1, total - warmup));
  if (kind === 'cosine') return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress))));
  // a misspelled name used to fall through to cosine
  throw new RangeError(`lrMultiplier: unknown schedule ${JSON.stringify(kind)}; expected one of ${SCHEDULES.map((s) => `"${s}"`).join(', ')}`);
}
