/**
 * Every Trainer setting, checked once at construction (AdamW's through
 * adamw.ts's checks). A setting that would
 * quietly ruin training (a NaN or negative learning rate, β = 1, eps = 0, a
 * misspelled schedule) is an OptionsError naming the setting, before any
 * weight is touched: after one such update every adapter parameter is NaN,
 * and a checkpoint saved then cannot be resumed.
 */
import { checkOptions, describeValue, isPlainObject, optionKeys, OptionsError } from '../util/options.js';
import { ADAMW_KEYS, adamwPart, finishAdamW, type AdamWOptions, type ResolvedAdamW } from './adamw.js';
import type { TrainerCallbacks } from './callbacks.js';
import { SCHEDULES, type ScheduleName } from './schedule.js';

export type { AdamWOptions } from './adamw.js';

/** The nested form `optimizer: { name: 'adamw', lr: 2e-3 }`; AdamW is the only optimizer. */
export interface OptimizerSpec extends AdamWOptions {
  name?: 'adamw' | 'AdamW';
}

export interface TrainerOptions extends AdamWOptions {
  /** 'adamw', or AdamW's settings nested (the same keys as the top level; giving one in both places with different values is an error) */
  optimizer?: 'adamw' | OptimizerSpec;
  schedule?: ScheduleName;
  /** warm-up steps (optimizer updates); or warmupRatio of totalSteps (not both) */
  warmupSteps?: number;
  warmupRatio?: number;
  /** optimizer updates the schedule decays over; fit() sets it from epochs when absent */
  totalSteps?: number;
  /** clip the global gradient norm to this (torch clip_grad_norm_); 0 = off */
  maxGradNorm?: number;
  /** micro-batches per optimizer update */
  gradAccumulation?: number;
  /** what to do with a NaN/Inf loss, gradient or update: stop with an error (default) or skip the update */
  onNonFinite?: 'error' | 'skip';
  /** seed for data order */
  seed?: number;
  callbacks?: TrainerCallbacks[];
}

export interface ResolvedTrainerOptions extends ResolvedAdamW {
  readonly schedule: ScheduleName;
  readonly warmupSteps?: number;
  readonly warmupRatio?: number;
  readonly totalSteps?: number;
  readonly maxGradNorm: number;
  readonly gradAccumulation: number;
  readonly onNonFinite: 'error' | 'skip';
  readonly seed: number;
  readonly callbacks: readonly TrainerCallbacks[];
}

const OPTIMIZER_KEYS = optionKeys<OptimizerSpec>()(['name', 'lr', 'betas', 'eps', 'weightDecay']);
export const TRAINER_KEYS = optionKeys<TrainerOptions>()([
  'lr', 'betas', 'eps', 'weightDecay', 'optimizer', 'schedule', 'warmupSteps', 'warmupRatio', 'totalSteps',
  'maxGradNorm', 'gradAccumulation', 'onNonFinite', 'seed', 'callbacks',
]);
const CALLBACK_KEYS = optionKeys<TrainerCallbacks>()(['onStart', 'onStep', 'onEval', 'onEnd']);

const got = (v: unknown) => `got ${describeValue(v)}`;

/** Checks for one options object; `where` names the function in every error. */
function checker(where: string, o: Record<string, unknown>) {
  const fail = (k: string, what: string): never => { throw new OptionsError(where, k, `must be ${what}, ${got(o[k])}`); };
  return {
    fail,
    number(k: string, ok: (x: number) => boolean, what: string): number | undefined {
      const v = o[k];
      if (v === undefined) return undefined;
      return typeof v === 'number' && Number.isFinite(v) && ok(v) ? v : fail(k, what);
    },
    integer(k: string, min: number, what: string): number | undefined {
      const v = o[k];
      if (v === undefined) return undefined;
      return Number.isSafeInteger(v) && (v as number) >= min ? (v as number) : fail(k, what);
    },
    oneOf<T extends string>(k: string, allowed: readonly T[]): T | undefined {
      const v = o[k];
      if (v === undefined) return undefined;
      return allowed.includes(v as T) ? (v as T) : fail(k, `one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
    },
  };
}

/**
 * `optimizer: { name, lr, ... }` merged with the top-level lr/betas/eps/
 * weightDecay: either place may give a setting, both may only if they agree.
 */
function mergeOptimizer(where: string, o: Record<string, unknown>): AdamWOptions {
  const top = adamwPart(where, o);
  const spec = o.optimizer;
  if (spec === undefined || spec === 'adamw') return top;
  if (typeof spec === 'string' || !isPlainObject(spec)) {
    throw new OptionsError(where, 'optimizer', `must be "adamw" or { name: "adamw", lr, betas, eps, weightDecay }, ${got(spec)}`);
  }
  checkOptions(`${where}: optimizer`, spec, OPTIMIZER_KEYS);
  if (spec.name !== undefined && (typeof spec.name !== 'string' || spec.name.toLowerCase() !== 'adamw')) {
    throw new OptionsError(where, 'optimizer.name', `must be "adamw" (the only optimizer), ${got(spec.name)}`);
  }
  const nested = adamwPart(where, spec, 'optimizer.');
  const out: AdamWOptions = { ...top };
  for (const k of ADAMW_KEYS as readonly (keyof AdamWOptions)[]) {
    const a = top[k], b = nested[k];
    if (b === undefined) continue;
    if (a !== undefined && JSON.stringify(a) !== JSON.stringify(b)) {
      throw new OptionsError(where, k, `is given twice with different values: ${k}: ${describeValue(a)} and optimizer.${k}: ${describeValue(b)}; give it once`);
    }
    (out as Record<string, unknown>)[k] = b;
  }
  return out;
}

function resolveCallbacks(where: string, v: unknown): readonly TrainerCallbacks[] {
  if (v === undefined) return Object.freeze([]);
  if (!Array.isArray(v)) throw new OptionsError(where, 'callbacks', `must be an array of { onStart, onStep, onEval, onEnd } objects, ${got(v)}`);
  v.forEach((cb, i) => {
    if (cb === null || typeof cb !== 'object') throw new OptionsError(where, `callbacks[${i}]`, `must be an object of hooks (onStart, onStep, onEval, onEnd), ${got(cb)}`);
    // a class instance keeps its hooks on the prototype; a plain object's keys are all meant as hooks
    if (isPlainObject(cb)) checkOptions(`${where}: callbacks[${i}]`, cb, CALLBACK_KEYS);
    for (const k of CALLBACK_KEYS) {
      const f = (cb as Record<string, unknown>)[k];
      if (f !== undefined && typeof f !== 'function') throw new OptionsError(where, `callbacks[${i}].${k}`, `must be a function, ${got(f)}`);
    }
  });
  return Object.freeze([...v]);
}

/** TrainerOptions → every setting checked and defaulted, in one frozen object. */
export function resolveTrainerOptions(opts: TrainerOptions = {}, where = 'Trainer'): ResolvedTrainerOptions {
  checkOptions(where, opts, TRAINER_KEYS);
  const o = opts as Record<string, unknown>;
  const c = checker(where, o);
  const adamw = finishAdamW(where, mergeOptimizer(where, o));
  const warmupSteps = c.integer('warmupSteps', 0, 'a non-negative integer');
  const warmupRatio = c.number('warmupRatio', (x) => x >= 0 && x <= 1, 'a number in [0, 1]');
  if (warmupSteps !== undefined && warmupRatio !== undefined) {
    throw new OptionsError(where, 'warmupSteps', `and warmupRatio are both given (${warmupSteps} and ${warmupRatio}); give one`);
  }
  const totalSteps = c.integer('totalSteps', 1, 'a positive integer');
  if (warmupSteps !== undefined && totalSteps !== undefined) checkWarmup(where, warmupSteps, totalSteps, 'totalSteps');
  const out: ResolvedTrainerOptions = {
    ...adamw,
    schedule: c.oneOf('schedule', SCHEDULES) ?? 'constant',
    ...(warmupSteps !== undefined && { warmupSteps }),
    ...(warmupRatio !== undefined && { warmupRatio }),
    ...(totalSteps !== undefined && { totalSteps }),
    maxGradNorm: c.number('maxGradNorm', (x) => x >= 0, 'a finite number > 0, or 0 for no clipping') ?? 0,
    gradAccumulation: c.integer('gradAccumulation', 1, 'a positive integer (micro-batches per update)') ?? 1,
    onNonFinite: c.oneOf('onNonFinite', ['error', 'skip'] as const) ?? 'error',
    seed: c.integer('seed', 0, 'a non-negative integer') ?? 0,
    callbacks: resolveCallbacks(where, o.callbacks),
  };
  return Object.freeze(out);
}

/** warm-up longer than the run would never reach the peak learning rate */
export function checkWarmup(where: string, warmupSteps: number, totalSteps: number, source: string): void {
  if (warmupSteps > totalSteps) throw new OptionsError(where, 'warmupSteps', `(${warmupSteps}) is more than the ${totalSteps} optimizer updates of the run (${source}); the learning rate would never reach lr`);
}

/**
 * Saved options with a resume's overrides on top. An override of one form of
 * a setting replaces the other form: a nested optimizer block replaces the
 * saved lr/betas/eps/weightDecay it gives, warmupRatio replaces a saved
 * warmupSteps and the other way round.
 */
export function withOverrides(saved: TrainerOptions, overrides: TrainerOptions, where: string): TrainerOptions {
  checkOptions(where, overrides, TRAINER_KEYS);
  const merged: Record<string, unknown> = { ...saved };
  const over = { ...overrides } as Record<string, unknown>;
  if (over.optimizer !== undefined) {
    Object.assign(over, mergeOptimizer(where, over));
    delete over.optimizer;
    for (const k of ADAMW_KEYS) if (over[k] === undefined) delete over[k];
  }
  if (over.warmupSteps !== undefined) delete merged.warmupRatio;
  if (over.warmupRatio !== undefined) delete merged.warmupSteps;
  for (const [k, v] of Object.entries(over)) if (v !== undefined) merged[k] = v;
  return merged as TrainerOptions;
}
