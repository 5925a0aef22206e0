/**
 * Tensors copied to the host: what a trainer's or optimizer's state holds,
 * so that a state outlives the trainer it came from and can be written to
 * disk or handed to another trainer.
 */
import * as tf from '@tensorflow/tfjs-core';

/** a tensor's values, copied to the host */
export interface HostTensor { shape: number[]; data: Float32Array }

/** host copies of `ts`, by name, in map order */
export async function toHost(ts: Map<string, tf.Tensor>): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for (const [n, t] of ts) out.set(n, { shape: t.shape, data: Float32Array.from(await t.data() as Float32Array) });
  return out;
}

export const fromHost = (t: HostTensor): tf.Tensor => tf.tensor(t.data, t.shape, 'float32');

/** every tensor of `part` names a parameter of `params` and has its shape; else an error from `where` naming the part */
export function checkAgainst(where: string, part: string, ts: Map<string, HostTensor>, params: Map<string, tf.Variable>): void {
  for (const [name, t] of ts) {
    const p = params.get(name);
    if (!p || t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i]) || t.data.length !== p.size) {
      throw new Error(`${where}: ${part} has "${name}" [${t.shape}], which ${p ? `does not fit the parameter's shape [${p.shape}]` : 'is no trainable parameter of this adapter'}`);
    }
  }
}
