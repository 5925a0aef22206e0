/**
 * Trainer checkpoints. A checkpoint folder holds
 *   adapter/               the PEFT folder (saveAdapter); params.safetensors instead for other trainables
 *   optimizer.safetensors  AdamW's m/<name> and v/<name>, and accum/<name> for a half-done accumulation
 *   trainer.json           step, schedule, data position, RNG and dropout counters, options, history
 * It is written under a temporary name and renamed into place. The previous
 * checkpoint is first renamed to <dir>.prev and deleted only once the new
 * one is in place, so a process killed at any instant leaves <dir> or
 * <dir>.prev complete, and resume takes whichever is. A <dir>.prev that is
 * not a checkpoint (a user's own folder of that name) is never deleted: the
 * save stops instead. A <dir> that is a symbolic link saves into the folder
 * it points to, and the link stays. Saves and resumes hold
 * <dir>.lock (util/lock.ts): without it two processes saving to one folder
 * delete each other's complete copy, and a reader can take trainer.json from
 * one save and the adapter from the next.
 */
import { existsSync, lstatSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadAdapter, saveAdapter } from '../adapters/peft.js';
import { atomicWrite, syncDir } from '../util/fs.js';
import { withLock, pidAlive } from '../util/lock.js';
import { checkOptions, OptionsError } from '../util/options.js';
import { ShareLoraAdapter } from '../adapters/sharelora.js';
import { readJsonFile } from '../util/json.js';
import { baseFingerprint, checkBaseFingerprint, parseBaseFingerprint, type BaseFingerprint } from '../models/fingerprint.js';
import { CheckpointError } from '../util/errors.js';
import { readSafetensors, serializeSafetensors, type RawTensor, type TensorToWrite } from '../models/safetensors.js';
import type { Model } from '../models/types.js';
import type { StepRecord } from './callbacks.js';
import type { Trainable } from './loss.js';
import { resolveTrainerOptions, TRAINER_KEYS, withOverrides, type ResolvedTrainerOptions, type TrainerOptions } from './options.js';
import type { HostTensor } from './host.js';
import type { TrainerState } from './state.js';

const FORMAT = 'sharelora-trainer-checkpoint';
const STATE = 'trainer.json';
const OPTIM = 'optimizer.safetensors';
const PARAMS = 'params.safetensors';

export interface ResumeOptions extends TrainerOptions {
  /** where to restore a checkpoint of something other than a ShareLoRA adapter (e.g. a FullFineTune of `model`) */
  trainable?: Trainable;
  /**
   * resume a checkpoint whose trainer.json records no base-model fingerprint
   * (written before fingerprints were recorded, or edited) without checking
   * that `model` is the one it was trained on
   */
  allowUnknownBase?: boolean;
}

interface State {
  adapter: { kind: 'sharelora' | 'params'; seed: number; dropoutCounter: number };
  optimizer: { step: number; lr: number };
  trainer: { microStep: number; epoch: number; cursor: number; rngState: number; accumLoss: number; accumCount: number };
  options: TrainerOptions;
  records: StepRecord[];
  /** the base model trained on; absent in checkpoints written before it was recorded */
  base?: BaseFingerprint;
}

/** the folder resume reads: <dir> when complete, else the <dir>.prev a killed save left */
export function completeCheckpoint(dir: string): string {
  const target = checkpointPath(dir);
  for (const d of [target, `${target}.prev`]) if (existsSync(join(d, STATE))) return d;
  throw new CheckpointError(dir, `no checkpoint here (no ${STATE}, and no complete previous checkpoint in ${basename(resolve(dir))}.prev)`);
}

/** what a checkpoint needs of a Trainer besides its state: what it trains, and the options to rebuild it with */
export interface Saved {
  readonly model: Model;
  readonly adapter: Trainable;
  readonly opts: ResolvedTrainerOptions;
  readonly totalSteps: number | undefined;
}

/** A checkpoint read back: what Trainer.resume builds the trainer from. */
export interface ReadCheckpoint {
  /** the adapter, loaded onto the model (or the `trainable` given, its weights restored) */
  adapter: Trainable;
  /** the saved options with the overrides applied, checked */
  options: TrainerOptions;
  state: TrainerState;
  /** undo what reading did to the model (unload the adapter it loaded), for a trainer that cannot be built from it */
  abandon(): void;
}

/** Write `state` (trainer.state(), taken between two steps) and the adapter to `dir`, replacing it atomically. */
export async function saveCheckpoint(trainer: Saved, state: TrainerState, dir: string): Promise<void> {
  const target = checkpointPath(dir);
  await mkdir(dirname(target), { recursive: true });
  refuseForeign(target);
  await withLock(target, () => replace(trainer, state, target), { purpose: `checkpoint ${target}` });
}

async function replace(trainer: Saved, state: TrainerState, target: string): Promise<void> {
  await removeStaleTemps(target);
  const prev = `${target}.prev`;
  // before the (long) write: a foreign <dir>.prev would stop the rotation anyway
  if (existsSync(target)) refuseForeignPrev(prev);
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await mkdir(tmp);
    await writeContents(trainer, state, tmp);
    await syncDir(tmp);
    refuseForeign(target);
    const rotating = existsSync(target);
    if (rotating) {
      refuseForeignPrev(prev);
      await discard(prev, target);
      await rename(target, prev);
    }
    await rename(tmp, target);
    await syncDir(dirname(target));
    // not rotating: a <dir>.prev checkpoint is what a killed save left, superseded now
    if (rotating || (prevIsOurs(prev) && isCheckpoint(prev))) await discard(prev, target);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * The real folder behind `dir`. A link to a folder (checkpoints kept on
 * another disk) is followed, so the save lands where the link points and the
 * link itself is kept; renaming the link aside would leave the target empty.
 */
function checkpointPath(dir: string): string {
  const p = resolve(dir);
  let isLink: boolean;
  try {
    isLink = lstatSync(p).isSymbolicLink();
  } catch {
    return p; // absent: the save creates it
  }
  if (!isLink) return p;
  try {
    return realpathSync(p);
  } catch {
    throw new CheckpointError(p, `is a symbolic link to ${readlinkSync(p)}, which does not exist; create that folder or remove the link`);
  }
}

/** Only a checkpoint (or an empty folder) is ever replaced: never a folder of the user's other files. */
function refuseForeign(target: string): void {
  if (!existsSync(target)) return;
  if (!statSync(target).isDirectory()) throw new CheckpointError(target, 'exists and is not a folder; not replacing it');
  if (!existsSync(join(target, STATE)) && readdirSync(target).length) {
    throw new CheckpointError(target, 'exists and is not a trainer checkpoint; not replacing it');
  }
}

/** whether `dir` holds a trainer.json this library wrote */
function isCheckpoint(dir: string): boolean {
  try {
    return (readJsonFile(join(dir, STATE), 'checkpoint state') as { format?: unknown } | null)?.format === FORMAT;
  } catch {
    return false;
  }
}

/**
 * <dir>.prev is deleted by a save only when a save made it: a real folder
 * (not a link) that is empty or a checkpoint (the previous copy a killed save
 * left). Anything else there is the user's, and the save stops untouched.
 */
function prevIsOurs(prev: string): boolean {
  let st;
  try {
    st = lstatSync(prev);
  } catch {
    return true;
  }
  return st.isDirectory() && (readdirSync(prev).length === 0 || isCheckpoint(prev));
}

function refuseForeignPrev(prev: string): void {
  if (prevIsOurs(prev)) return;
  const st = lstatSync(prev);
  const what = st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a folder that is not a checkpoint' : 'a file';
  throw new CheckpointError(prev, `is ${what}, not a previous checkpoint; a save moves the previous checkpoint aside under this name and deletes it, so it will not touch yours — rename or move it, then save again (nothing was written)`);
}

/**
 * Delete a folder of ours so that a kill part-way leaves nothing half-deleted under its name: renamed to one of this
 * process's temporary names first (removeStaleTemps clears it once the process is gone). Deleted in place, a <dir>.prev
 * whose trainer.json went first was no longer recognisable as a checkpoint, and every later save refused to touch it
 * (seen once in the suite: a SIGKILL inside that rm).
 */
async function discard(dir: string, target: string): Promise<void> {
  if (!existsSync(dir)) return;
  const trash = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await rename(dir, trash);
  await rm(trash, { recursive: true, force: true });
}

/** temporary folders of saves whose process died (killed mid-save) */
async function removeStaleTemps(target: string): Promise<void> {
  const prefix = `${basename(target)}.tmp-`;
  for (const name of await readdir(dirname(target))) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (!Number.isSafeInteger(pid) || pid === process.pid || pidAlive(pid)) continue;
    await rm(join(dirname(target), name), { recursive: true, force: true });
  }
}

const f32 = async (v: tf.Tensor): Promise<TensorToWrite> => ({ dtype: 'F32', shape: v.shape, data: Float32Array.from(await v.data() as Float32Array) });
const toWrite = (t: HostTensor): TensorToWrite => ({ dtype: 'F32', shape: t.shape, data: t.data });
/** JSON has no NaN/Inf; a skipped step's lr is NaN, so those are written as strings */
const encode = (_k: string, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v);

async function writeContents(t: Saved, s: TrainerState, dir: string): Promise<void> {
  const optim = new Map<string, TensorToWrite>();
  for (const [n, m] of s.optimizer.m) optim.set(`m/${n}`, toWrite(m));
  for (const [n, v] of s.optimizer.v) optim.set(`v/${n}`, toWrite(v));
  for (const [n, g] of s.accum) optim.set(`accum/${n}`, toWrite(g));
  const share = t.adapter instanceof ShareLoraAdapter ? t.adapter : undefined;
  const { callbacks: _, ...opts } = t.opts;
  const totalSteps = t.totalSteps;
  const state: State & { format: string; version: number } = {
    format: FORMAT, version: 1,
    adapter: { kind: share ? 'sharelora' : 'params', seed: share?.options.seed ?? 0, dropoutCounter: t.adapter.dropoutCounter ?? 0 },
    optimizer: { step: s.optimizer.step, lr: s.optimizer.lr },
    trainer: s.trainer,
    options: { ...opts, betas: [...opts.betas] as [number, number], ...(totalSteps !== undefined && { totalSteps }) },
    records: s.records,
    base: await baseFingerprint(t.model, t.adapter),
  };
  if (share) await saveAdapter(share, join(dir, 'adapter'));
  else await atomicWrite(join(dir, PARAMS), serializeSafetensors(new Map(await Promise.all([...t.adapter.namedParameters()].map(async ([n, v]) => [n, await f32(v)] as const)))));
  await atomicWrite(join(dir, OPTIM), serializeSafetensors(optim));
  await atomicWrite(join(dir, STATE), JSON.stringify(state, encode, 1) + '\n');
}

/** The checkpoint in `dir`, its adapter loaded onto `model`, for Trainer.resume to continue from. */
export async function resumeCheckpoint(dir: string, model: Model, opts: ResumeOptions = {}): Promise<ReadCheckpoint> {
  checkOptions('Trainer.resume', opts, [...TRAINER_KEYS, 'trainable', 'allowUnknownBase']);
  if (opts.allowUnknownBase !== undefined && typeof opts.allowUnknownBase !== 'boolean') throw new OptionsError('Trainer.resume', 'allowUnknownBase', `must be true or false; got ${JSON.stringify(opts.allowUnknownBase)}`);
  const target = checkpointPath(dir);
  return withLock(target, () => readCheckpoint(target, model, opts), { purpose: `checkpoint ${target}`, readOnlyOk: true });
}

async function readCheckpoint(dir: string, model: Model, opts: ResumeOptions): Promise<ReadCheckpoint> {
  const from = completeCheckpoint(dir);
  const stateFile = join(from, STATE);
  const s = parseState(readJsonFile(stateFile, 'checkpoint state'), stateFile);
  const { trainable, allowUnknownBase, ...overrides } = opts;
  // settled before anything is loaded: a bad override must not leave an adapter on the model
  const options = withOverrides(s.options, overrides, 'Trainer.resume');
  resolveTrainerOptions(options, 'Trainer.resume');
  if (s.base) await checkBaseFingerprint(model, s.base, stateFile);
  // every save records it: its absence is an old or edited file, and resuming onto another model would go unnoticed
  else if (!allowUnknownBase) throw new CheckpointError(stateFile, 'records no "base" (the fingerprint of the model it was trained on), so resume cannot check that the model given is that model; if you know it is, pass { allowUnknownBase: true } to Trainer.resume');
  let adapter: Trainable;
  if (s.adapter.kind === 'sharelora') {
    adapter = await loadAdapter(model, join(from, 'adapter'), { seed: s.adapter.seed });
  } else {
    if (!trainable) throw new CheckpointError(stateFile, 'holds parameters of a trainable that is not a ShareLoRA adapter; pass that trainable as opts.trainable');
    const file = join(from, PARAMS);
    const vars = trainable.namedParameters();
    const st = readSafetensors(file);
    if (st.tensors.size !== vars.size) throw new CheckpointError(file, `holds ${st.tensors.size} tensors for ${vars.size} trainable parameters`);
    // all checked before any is assigned, so a mismatch leaves the trainable as it was
    const values = [...vars].map(([n, v]) => [v, checked(st.tensors.get(n), v.shape, file, n)] as const);
    for (const [v, x] of values) tf.tidy(() => v.assign(tf.tensor(x.data, x.shape, 'float32')));
    adapter = trainable;
  }
  adapter.dropoutCounter = s.adapter.dropoutCounter;
  const abandon = () => { if (adapter instanceof ShareLoraAdapter) adapter.unload(); };
  try {
    return { adapter, options, state: trainerState(s, adapter.namedParameters(), join(from, OPTIM)), abandon };
  } catch (e) {
    abandon();
    throw e;
  }
}

function checked(t: RawTensor | undefined, shape: number[], file: string, name: string): RawTensor & { data: Float32Array } {
  if (!t) throw new CheckpointError(file, `tensor "${name}" is missing`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) throw new CheckpointError(file, `tensor "${name}" has shape [${t.shape}], expected [${shape}] (checkpoint of another adapter?)`);
  if (!(t.data instanceof Float32Array)) throw new CheckpointError(file, `tensor "${name}" has dtype ${t.dtype}, expected a float type`);
  return t as RawTensor & { data: Float32Array };
}

/** trainer.json and optimizer.safetensors -> the TrainerState they hold, every tensor checked against `params` */
function trainerState(s: State, params: Map<string, tf.Variable>, file: string): TrainerState {
  const saved = readSafetensors(file).tensors;
  for (const key of saved.keys()) {
    const [kind, name] = [key.slice(0, key.indexOf('/')), key.slice(key.indexOf('/') + 1)];
    if (!params.has(name) || !['m', 'v', 'accum'].includes(kind)) throw new CheckpointError(file, `tensor "${key}" matches no trainable parameter (checkpoint of another adapter?)`);
  }
  // in parameter order, as training fills them: the global norm sums in map order, and must round the same way
  const m = new Map<string, HostTensor>(), v = new Map<string, HostTensor>(), accum = new Map<string, HostTensor>();
  for (const [name, p] of params) {
    const [mt, vt, g] = ['m', 'v', 'accum'].map((k) => saved.get(`${k}/${name}`));
    if (!mt !== !vt) throw new CheckpointError(file, `"m/${name}" and "v/${name}" must both be present or both absent`);
    if (mt) m.set(name, checked(mt, p.shape, file, `m/${name}`));
    if (vt) v.set(name, checked(vt, p.shape, file, `v/${name}`));
    if (g) accum.set(name, checked(g, p.shape, file, `accum/${name}`));
  }
  if ((accum.size > 0) !== (s.trainer.accumCount > 0)) throw new CheckpointError(file, `accumulated gradients (${accum.size}) disagree with trainer.accumCount ${s.trainer.accumCount}`);
  return { optimizer: { ...s.optimizer, m, v }, accum, trainer: s.trainer, records: s.records };
}

/** trainer.json -> State, every field checked so a damaged file is a CheckpointError, not a NaN later */
function parseState(raw: unknown, file: string): State {
  const fail = (what: string): never => { throw new CheckpointError(file, what); };
  const obj = (v: unknown, at: string) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : fail(`"${at}" must be an object`));
  const count = (v: unknown, at: string) => (Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : fail(`"${at}" must be a non-negative integer, got ${JSON.stringify(v)}`));
  const float = (v: unknown, at: string) => (typeof v === 'number' ? v : v === 'NaN' || v === 'Infinity' || v === '-Infinity' ? Number(v) : fail(`"${at}" must be a number, got ${JSON.stringify(v)}`));
  const r = obj(raw, 'checkpoint');
  if (r.format !== FORMAT) fail(`is not a trainer checkpoint (format ${JSON.stringify(r.format)}, expected "${FORMAT}")`);
  if (r.version !== 1) fail(`checkpoint version ${JSON.stringify(r.version)} is not supported (expected 1)`);
  const a = obj(r.adapter, 'adapter'), o = obj(r.optimizer, 'optimizer'), t = obj(r.trainer, 'trainer'), opts = obj(r.options, 'options');
  if (a.kind !== 'sharelora' && a.kind !== 'params') fail(`"adapter.kind" must be "sharelora" or "params", got ${JSON.stringify(a.kind)}`);
  if (!Array.isArray(r.records)) fail('"records" must be a list');
  const records = (r.records as unknown[]).map((x, i) => {
    const rec = obj(x, `records[${i}]`);
    const out: Record<string, number> = {};
    for (const k of ['step', 'epoch', 'loss', 'lr', 'gradNorm', 'tokens', 'seconds']) out[k] = float(rec[k], `records[${i}].${k}`);
    for (const k of ['evalLoss', 'evalMetric']) if (rec[k] !== undefined) out[k] = float(rec[k], `records[${i}].${k}`);
    return out as unknown as StepRecord;
  });
  return {
    adapter: { kind: a.kind as 'sharelora' | 'params', seed: float(a.seed, 'adapter.seed'), dropoutCounter: count(a.dropoutCounter, 'adapter.dropoutCounter') },
    optimizer: { step: count(o.step, 'optimizer.step'), lr: float(o.lr, 'optimizer.lr') },
    trainer: {
      microStep: count(t.microStep, 'trainer.microStep'), epoch: count(t.epoch, 'trainer.epoch'), cursor: count(t.cursor, 'trainer.cursor'),
      rngState: count(t.rngState, 'trainer.rngState'), accumLoss: float(t.accumLoss, 'trainer.accumLoss'), accumCount: count(t.accumCount, 'trainer.accumCount'),
    },
    options: parseOptions(opts, fail),
    records,
    base: r.base === undefined ? undefined : parseBaseFingerprint(r.base, fail),
  };
}

/** the saved options, checked as the Trainer checks them; an error names the field in the file */
function parseOptions(o: Record<string, unknown>, fail: (what: string) => never): TrainerOptions {
  try {
    resolveTrainerOptions(o as TrainerOptions, 'checkpoint');
  } catch (e) {
    if (e instanceof OptionsError) fail(`"options${e.field ? `.${e.field}` : ''}" ${e.problem}`);
    throw e;
  }
  return o as TrainerOptions;
}
