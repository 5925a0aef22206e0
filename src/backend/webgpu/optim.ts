/**
 * The optimizer's per-parameter work as one dispatch each. The tfjs-core
 * path of an AdamW update is 13 ops per parameter and the gradient-norm
 * check 7 more; with 24 adapter tensors that was ≈ 500 engine ops a step,
 * each paying ~100 µs of host time on the H200 machine (bench/NOTES.md).
 *
 * gradStats: [Σg², 1 if every element is finite else 0] in one workgroup.
 * adamw: torch.optim.AdamW's update of p, m and v in one elementwise pass,
 * with the clipping coefficient folded in as a gradient scale.
 */
import * as tf from '@tensorflow/tfjs-core';
import { dispatch, elementCount, grid1d, type KernelAttrs, type KernelInputs } from './dispatch.js';
import { ELT_HEADER, reducers } from './rows.js';

export function gradStatsKernel({ inputs }: { inputs: KernelInputs }): tf.TensorInfo {
  const { g } = inputs;
  const WG = 256;
  return dispatch({
    key: 'optim_grad_stats',
    outputs: [{ name: 'S' }],
    inputs: [{ name: 'G' }],
    body: () => `${reducers(WG)}
@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>) {
  let lid = l3.x;
  var s = 0.0;
  var bad = 0.0;
  for (var i = lid; i < P.n; i += ${WG}u) {
    let x = G[i];
    // exponent all ones = Inf or NaN (a bit test: the compiler may assume x == x)
    if ((bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u) { bad = 1.0; }
    s += x * x;
  }
  s = wgSum(s, lid);
  bad = wgMax(bad, lid);
  if (lid == 0u) { S[0] = s; S[1] = 1.0 - bad; }
}`,
  }, [g], [{ shape: [2] }], [['n', 'u32', elementCount(g)]], [1, 1, 1])[0];
}

/** attrs: decay = 1 − lr·wd, beta1, beta2, eps, stepSize = lr/(1 − β1ᵗ), sqrtBc2 = √(1 − β2ᵗ), gscale */
export function adamwKernel({ inputs, attrs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo[] {
  const { p, g, m, v } = inputs;
  const n = elementCount(p);
  const f = (k: string) => attrs[k] as number;
  return dispatch({
    key: 'optim_adamw',
    outputs: [{ name: 'Po' }, { name: 'Mo' }, { name: 'Vo' }],
    inputs: [{ name: 'Pi' }, { name: 'G' }, { name: 'Mi' }, { name: 'Vi' }],
    body: () => `${ELT_HEADER}
  let g = G[i] * P.gscale;
  let m1 = P.beta1 * Mi[i] + (1.0 - P.beta1) * g;
  let v1 = P.beta2 * Vi[i] + (1.0 - P.beta2) * (g * g);
  Mo[i] = m1;
  Vo[i] = v1;
  Po[i] = Pi[i] * P.decay - (m1 / (sqrt(v1) / P.sqrtBc2 + P.eps)) * P.stepSize;
}`,
  }, [p, g, m, v], [{ shape: p.shape }, { shape: p.shape }, { shape: p.shape }], [
    ['n', 'u32', n], ['gscale', 'f32', f('gscale')], ['beta1', 'f32', f('beta1')], ['beta2', 'f32', f('beta2')],
    ['decay', 'f32', f('decay')], ['sqrtBc2', 'f32', f('sqrtBc2')], ['eps', 'f32', f('eps')], ['stepSize', 'f32', f('stepSize')],
  ], grid1d(Math.ceil(n / 256)));
}
