/** Reads a HF checkpoint folder's tensors and hands them out by name with shape checks. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { readJsonFile } from '../util/json.js';
import { CheckpointError } from '../util/errors.js';
import { readSafetensors, type RawTensor } from './safetensors.js';

function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (x - x !== 0) return i; // NaN - NaN and Inf - Inf are NaN
  }
  return -1;
}

function unravel(i: number, shape: number[]): number[] {
  const out: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) { out.unshift(i % shape[d]); i = Math.floor(i / shape[d]); }
  return out;
}

export class WeightStore {
  private used = new Set<string>();
  constructor(private readonly tensors: Map<string, { t: RawTensor; file: string }>, private readonly dir: string) {}

  static fromDir(dir: string): WeightStore {
    const single = join(dir, 'model.safetensors');
    const index = join(dir, 'model.safetensors.index.json');
    const out = new Map<string, { t: RawTensor; file: string }>();
    if (existsSync(single)) {
      for (const [k, t] of readSafetensors(single).tensors) out.set(k, { t, file: single });
    } else if (existsSync(index)) {
      const parsed = readJsonFile(index, 'shard index') as { weight_map?: unknown } | null;
      const map = parsed?.weight_map as Record<string, unknown> | undefined;
      if (!map || typeof map !== 'object' || Array.isArray(map)) throw new CheckpointError(index, 'bad shard index (no "weight_map" object)');
      const shards = new Map<string, Set<string>>();
      for (const [name, shard] of Object.entries(map)) {
        if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\') || shard === '.' || shard === '..') throw new CheckpointError(index, `weight_map["${name}"] must be a file name in the folder, got ${JSON.stringify(shard)}`);
        if (!shards.has(shard)) shards.set(shard, new Set());
        shards.get(shard)!.add(name);
      }
      for (const [shard, names] of shards) {
        const path = join(dir, shard);
        const st = readSafetensors(path, names);
        for (const n of names) {
          const t = st.tensors.get(n);
          if (!t) throw new CheckpointError(path, `tensor "${n}" listed in model.safetensors.index.json is missing from the shard`);
          out.set(n, { t, file: path });
        }
      }
    } else {
      throw new CheckpointError(dir, 'no model.safetensors or model.safetensors.index.json in the folder');
    }
    return new WeightStore(out, dir);
  }

  has(name: string): boolean { return this.tensors.has(name); }

  /** elements in the whole checkpoint: the most any tensor sized from config.json alone may hold */
  numel(): number {
    let n = 0;
    for (const { t } of this.tensors.values()) n += t.data.length;
    return n;
  }

  /** tensors handed out so far, so a model whose construction fails can free them */
  private readonly taken: tf.Tensor[] = [];

  track<T extends tf.Tensor>(t: T): T {
    this.taken.push(t);
    return t;
  }

  disposeTaken(): void {
    tf.dispose(this.taken.splice(0));
  }

  /** Tensor `name` as float32, checked against the shape the architecture expects. */
  take(name: string, shape: number[]): tf.Tensor {
    const e = this.tensors.get(name);
    if (!e) throw new CheckpointError(this.dir, `tensor "${name}" is missing from the checkpoint`);
    const want = shape;
    if (e.t.shape.length !== want.length || e.t.shape.some((d, i) => d !== want[i])) {
      throw new CheckpointError(e.file, `tensor "${name}" has shape [${e.t.shape.join(', ')}], expected [${want.join(', ')}]`);
    }
    const data = e.t.data instanceof Float32Array ? e.t.data : Float32Array.from(e.t.data);
    // a NaN/Inf base weight turns every logit NaN, and generate() then picks token 0 without a word
    const bad = firstNonFinite(data);
    if (bad >= 0) throw new CheckpointError(e.file, `tensor "${name}" holds ${data[bad]} at element ${bad} (index [${unravel(bad, want).join(', ')}]); model weights must be finite`);
    this.used.add(name);
    return this.track(tf.tensor(data, want, 'float32'));
  }

  /**
   * Tensors no module took, except those `ignorable` names (buffers and
   * heads Hugging Face also drops). A config that builds fewer layers than
   * the checkpoint holds reads only the first ones: these names say so.
   */
  unused(ignorable: RegExp): Array<{ name: string; file: string }> {
    return [...this.tensors].filter(([n]) => !this.used.has(n) && !ignorable.test(n)).map(([name, { file }]) => ({ name, file }));
  }

  /**
   * Mark tensors this architecture deliberately leaves unread (a masked-LM
   * head under a classifier, a pooler HF does not build), so that they count
   * as consumed rather than as a checkpoint that does not fit. Returns their names.
   */
  ignore(pattern: RegExp): string[] {
    const names = [...this.tensors.keys()].filter((n) => pattern.test(n));
    for (const n of names) this.used.add(n);
    return names;
  }

  /** the first of `names` present (HF saves GPT-2 with or without the `transformer.` prefix) */
  pick(...names: string[]): string {
    return names.find((n) => this.tensors.has(n)) ?? names[0];
  }
}
