/**
 * A batch's device-side check (../ops.ts batchCounts) in one dispatch: [bad input ids, bad attention-mask values,
 * bad labels, labels that carry a loss]. The reference is about fifteen small tfjs kernels a step (comparisons,
 * logical ands, casts, sums, a slice and a stack): at notebook scale each is a dispatch boundary the GPU waits on
 * (bench/NOTES.md entry 32). One workgroup walks the three tensors (a batch is thousands of elements, not millions)
 * and counts into workgroup atomics.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { elementCount, dispatch, type KernelAttrs, type KernelInputs } from './dispatch.js';
import { IGNORE_INDEX } from '../labels.js';

const WG = 256;

/** the WGSL element type a tensor's buffer holds: int32 and bool are i32 */
export const checkType = (t: { dtype: string }): 'i32' | 'f32' | undefined =>
  t.dtype === 'float32' ? 'f32' : t.dtype === 'int32' || t.dtype === 'bool' ? 'i32' : undefined;

export function batchCheckKernel({ inputs, attrs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo {
  const parts = (['ids', 'mask', 'labels'] as const).filter((n) => inputs[n]);
  const ty = Object.fromEntries(parts.map((n) => [n, checkType(inputs[n])!])) as Record<string, 'i32' | 'f32'>;
  const regression = !!attrs.regression, skipFirst = !!attrs.skipFirst;
  const labels = inputs.labels;
  const T = labels && labels.shape.length === 2 ? labels.shape[1] : 1;
  // a whole number in [0, n): NaN and ±Inf (all-ones exponent) fail before the comparisons
  const good = (x: string, t: 'i32' | 'f32', n: string) => t === 'i32'
    ? `(${x} >= 0 && ${x} < i32(${n}))`
    : `(finite(${x}) && ${x} == floor(${x}) && ${x} >= 0.0 && ${x} < f32(${n}))`;
  const lit = (t: 'i32' | 'f32', v: number) => (t === 'i32' ? `${v}` : `${v}.0`);
  const loops: string[] = [];
  if (ty.ids) loops.push(`for (var k = lid; k < P.nI; k += ${WG}u) { let x = I[k]; if (!${good('x', ty.ids, 'P.V')}) { a += 1u; } }`);
  if (ty.mask) loops.push(`for (var k = lid; k < P.nM; k += ${WG}u) { let x = M[k]; if (!(x == ${lit(ty.mask, 0)} || x == ${lit(ty.mask, 1)})) { b += 1u; } }`);
  if (ty.labels) {
    const t = ty.labels;
    const body = regression
      ? (t === 'f32' ? 'if (!finite(x)) { c += 1u; }' : '')
      // !(x == -100) rather than x != -100: Tint's != on floats is ordered, false for NaN, which must count as kept
      : `let kept = !(x == ${lit(t, IGNORE_INDEX)});
      if (kept && !${good('x', t, 'P.R')}) { c += 1u; }
      if (kept${skipFirst ? ' && k % P.T != 0u' : ''}) { d += 1u; }`;
    loops.push(`for (var k = lid; k < P.nL; k += ${WG}u) { let x = L[k]; ${body} }`);
  }
  const names: Record<string, string> = { ids: 'I', mask: 'M', labels: 'L' };
  const key = `batch_check_${parts.map((n) => `${n[0]}${ty[n]}`).join('')}_${+regression}${+skipFirst}`;
  return dispatch({
    key,
    outputs: [{ name: 'O' }],
    inputs: parts.map((n) => ({ name: names[n], type: ty[n] })),
    body: () => `
var<workgroup> C : array<atomic<u32>, 4>;
fn finite(x : f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }
@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>) {
  let lid = l3.x;
  if (lid < 4u) { atomicStore(&C[lid], 0u); }
  workgroupBarrier();
  var a = 0u; var b = 0u; var c = 0u; var d = 0u;
  ${loops.join('\n  ')}
  atomicAdd(&C[0], a); atomicAdd(&C[1], b); atomicAdd(&C[2], c); atomicAdd(&C[3], d);
  workgroupBarrier();
  if (lid == 0u) {
    O[0] = f32(atomicLoad(&C[0])); O[1] = f32(atomicLoad(&C[1])); O[2] = f32(atomicLoad(&C[2]));
    O[3] = ${!labels ? '1.0' : regression ? 'P.all' : 'f32(atomicLoad(&C[3]))'};
  }
}`,
  }, parts.map((n) => inputs[n]), [{ shape: [4] }], [
    ['nI', 'u32', inputs.ids ? elementCount(inputs.ids) : 0], ['nM', 'u32', inputs.mask ? elementCount(inputs.mask) : 0],
    ['nL', 'u32', labels ? elementCount(labels) : 0], ['V', 'u32', attrs.vocab as number], ['R', 'u32', attrs.labelRange as number],
    ['T', 'u32', T], ['all', 'f32', labels ? elementCount(labels) : 0],
  ], [1, 1, 1])[0];
}
