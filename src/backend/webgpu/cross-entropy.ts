/**
 * Softmax cross-entropy with torch's ignore_index (-100). The logits are
 * the largest tensor of a causal-LM step (2048 × 50257 fp32 = 412 MB for
 * GPT-2 small, bench/NOTES.md), so each direction reads them once and the
 * softmax itself is never written: the backward rebuilds it from the row
 * log-sum-exp the forward kept.
 */
import * as tf from '@tensorflow/tfjs-core';
import { dispatch, grid1d, type KernelInputs } from './dispatch.js';
import { reducers, ROW_HEADER } from './rows.js';
import { IGNORE_INDEX } from '../labels.js';
import { flags } from '../flags.js';

/**
 * Per row: one pass of online softmax (running max and rescaled sum), then
 * loss_i = lse_i − logit[label_i] where label ≠ -100. A second one-workgroup
 * kernel averages over the valid rows. Outputs: mean loss [], lse [N], count [1].
 */
export function xentForward({ inputs }: { inputs: KernelInputs }): tf.TensorInfo[] {
  const { logits, labels } = inputs;
  const [N, V] = logits.shape;
  const WG = 256;
  // SHARELORA_WEBGPU_XENT4: four logits a thread an iteration, the running max rescaled once for the four (5 exps
  // for 4 logits, not 8) and four independent loads in flight; the logits past V read as -3e38, whose exp is 0
  const x4 = flags.webgpuXent4;
  const loop = x4 ? `
  for (var j0 = lid; j0 < P.V; j0 += ${4 * WG}u) {
    let x0 = L[base + j0];
    ${[1, 2, 3].map((c) => `let j${c} = j0 + ${c * WG}u; let x${c} = select(-3.0e38, L[base + min(j${c}, P.V - 1u)], j${c} < P.V);`).join('\n    ')}
    let nm = max(max(m, x0), max(x1, max(x2, x3)));
    s = s * exp(m - nm) + ((exp(x0 - nm) + exp(x1 - nm)) + (exp(x2 - nm) + exp(x3 - nm)));
    m = nm;
  }` : `
  for (var j = lid; j < P.V; j += ${WG}u) {
    let x = L[base + j];
    let nm = max(m, x);
    s = s * exp(m - nm) + exp(x - nm);
    m = nm;
  }`;
  const [rowLoss, lse] = dispatch({
    key: `xent_rows_${WG}${x4 ? '_x4' : ''}`,
    outputs: [{ name: 'RL' }, { name: 'LSE' }],
    inputs: [{ name: 'L' }, { name: 'Y', type: 'i32' }],
    body: () => `
var<workgroup> rm : array<f32, ${WG}>;
var<workgroup> rs : array<f32, ${WG}>;
${ROW_HEADER(WG)}
  let base = row * P.V;
  var m = -3.0e38;
  var s = 0.0;${loop}
  rm[lid] = m; rs[lid] = s;
  workgroupBarrier();
  for (var k = ${WG / 2}u; k > 0u; k = k >> 1u) {
    if (lid < k) {
      let m1 = rm[lid]; let m2 = rm[lid + k];
      let nm = max(m1, m2);
      rs[lid] = rs[lid] * exp(m1 - nm) + rs[lid + k] * exp(m2 - nm);
      rm[lid] = nm;
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let l = rm[0] + log(rs[0]);
    LSE[row] = l;
    let y = Y[row];
    if (y >= 0 && u32(y) < P.V) { RL[row] = l - L[base + u32(y)]; } else { RL[row] = 0.0; }
  }
}`,
  }, [logits, labels], [{ shape: [N] }, { shape: [N] }], [['rows', 'u32', N], ['V', 'u32', V]], grid1d(N));
  const [loss, count] = dispatch({
    key: 'xent_mean',
    outputs: [{ name: 'O' }, { name: 'C' }],
    inputs: [{ name: 'RL' }, { name: 'Y', type: 'i32' }],
    body: () => `${reducers(256)}
@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>) {
  let lid = l3.x;
  var s = 0.0;
  var c = 0.0;
  for (var i = lid; i < P.n; i += 256u) { if (Y[i] != ${IGNORE_INDEX}) { s += RL[i]; c += 1.0; } }
  s = wgSum(s, lid);
  c = wgSum(c, lid);
  if (lid == 0u) { O[0] = s / max(c, 1.0); C[0] = c; }
}`,
  }, [rowLoss, labels], [{ shape: [] }, { shape: [1] }], [['n', 'u32', N]], [1, 1, 1]);
  const be = tf.backend();
  be.disposeData(rowLoss.dataId);
  return [loss, lse, count];
}

/** dlogits = (softmax − onehot)·dy/n on valid rows, 0 on ignored ones. */
export function xentBackward({ inputs }: { inputs: KernelInputs }): tf.TensorInfo {
  const { logits, labels, lse, count, dy } = inputs;
  const [N, V] = logits.shape;
  // SHARELORA_WEBGPU_XENT4: a thread writes four logits' gradients (256 apart: each store still coalesced), reading
  // its row's label, LSE and scale once for the four
  const per = flags.webgpuXent4 ? 4 : 1;
  const gx = Math.ceil(V / (256 * per));
  // each of a thread's logits; an ignored row's gradient is zero, whatever its logits hold
  const one = (j: string) => `{ let j = ${j}; if (j < P.V) { var p = exp(L[row * P.V + j] - l); if (i32(j) == y) { p = p - 1.0; } DL[row * P.V + j] = select(p * sc, 0.0, ign); } }`;
  const body = `
  let j0 = w3.x * ${256 * per}u + l3.x;
  let row = w3.y + w3.z * 65535u;
  if (j0 >= P.V || row >= P.rows) { return; }
  let y = Y[row];
  let ign = y == ${IGNORE_INDEX};
  let sc = G[0] / max(C[0], 1.0);
  let l = LSE[row];
  ${Array.from({ length: per }, (_, c) => one(`j0 + ${c * 256}u`)).join('\n  ')}`;
  return dispatch({
    key: `xent_bwd${per === 4 ? '_x4' : ''}`,
    outputs: [{ name: 'DL' }],
    inputs: [{ name: 'L' }, { name: 'Y', type: 'i32' }, { name: 'LSE' }, { name: 'C' }, { name: 'G' }],
    body: () => `
@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>) {${body}
}`,
  }, [logits, labels, lse, count, dy], [{ shape: [N, V] }], [['rows', 'u32', N], ['V', 'u32', V]], [gx, Math.min(N, 65535), Math.ceil(N / 65535)])[0];
}
