/**
 * Layer and RMS norm as one row kernel each way. The forward also writes
 * each row's (mean, rstd), so the backward neither recomputes them nor needs
 * x̂ kept; dγ and dβ (trainable norms only) are formed from the same stats
 * in ops.ts.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { dispatch, elementCount, grid1d, type KernelAttrs, type KernelInputs } from './dispatch.js';
import { reducers, ROW_HEADER, rowWG } from './rows.js';

/** y = (x-mean)·rstd·g + b (layer) or x·rstd·g (rms); stats [rows, 2] = (mean, rstd). */
export function normForward({ inputs, attrs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo[] {
  const { x, gamma, beta } = inputs;
  const rms = !!attrs.rms;
  const D = x.shape[x.shape.length - 1];
  const rows = elementCount(x) / D;
  const WG = rowWG(D);
  const ins = rms ? [x, gamma] : [x, gamma, beta];
  return dispatch({
    key: `norm_fwd_${rms ? 'rms' : 'ln'}_${WG}`,
    outputs: [{ name: 'Y' }, { name: 'S' }],
    inputs: rms ? [{ name: 'X' }, { name: 'G' }] : [{ name: 'X' }, { name: 'G' }, { name: 'Bt' }],
    body: () => `${reducers(WG)}
${ROW_HEADER(WG)}
  let base = row * P.D;
  ${rms ? 'let mean = 0.0;' : `
  var s = 0.0;
  for (var i = lid; i < P.D; i += ${WG}u) { s += X[base + i]; }
  let mean = wgSum(s, lid) / f32(P.D);`}
  var s2 = 0.0;
  for (var i = lid; i < P.D; i += ${WG}u) { let d = X[base + i] - mean; s2 += d * d; }
  let rstd = inverseSqrt(wgSum(s2, lid) / f32(P.D) + P.eps);
  for (var i = lid; i < P.D; i += ${WG}u) {
    Y[base + i] = (X[base + i] - mean) * rstd * G[i]${rms ? '' : ' + Bt[i]'};
  }
  if (lid == 0u) { S[row * 2u] = mean; S[row * 2u + 1u] = rstd; }
}`,
  }, ins, [{ shape: x.shape }, { shape: [rows, 2] }], [['rows', 'u32', rows], ['D', 'u32', D], ['eps', 'f32', attrs.eps as number]], grid1d(rows));
}

/** dx of a layer/RMS norm from dy, x, gamma and the forward's stats. */
export function normBackward({ inputs, attrs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo {
  const { dy, x, gamma, stats } = inputs;
  const rms = !!attrs.rms;
  const D = x.shape[x.shape.length - 1];
  const rows = elementCount(x) / D;
  const WG = rowWG(D);
  // layer: dx = rstd·(g - mean(g) - xhat·mean(g·xhat)), g = dy·gamma
  // rms:   dx = rstd·(g - xhat·mean(g·xhat)),  xhat = x·rstd
  return dispatch({
    key: `norm_bwd_${rms ? 'rms' : 'ln'}_${WG}`,
    outputs: [{ name: 'DX' }],
    inputs: [{ name: 'DY' }, { name: 'X' }, { name: 'G' }, { name: 'S' }],
    body: () => `${reducers(WG)}
${ROW_HEADER(WG)}
  let base = row * P.D;
  let mean = S[row * 2u];
  let rstd = S[row * 2u + 1u];
  var sg = 0.0;
  var sgx = 0.0;
  for (var i = lid; i < P.D; i += ${WG}u) {
    let g = DY[base + i] * G[i];
    sg += g;
    sgx += g * (X[base + i] - mean) * rstd;
  }
  let mg = ${rms ? '0.0' : 'wgSum(sg, lid) / f32(P.D)'};
  let mgx = wgSum(sgx, lid) / f32(P.D);
  for (var i = lid; i < P.D; i += ${WG}u) {
    let xh = (X[base + i] - mean) * rstd;
    DX[base + i] = rstd * (DY[base + i] * G[i] - mg - xh * mgx);
  }
}`,
  }, [dy, x, gamma, stats], [{ shape: x.shape }], [['rows', 'u32', rows], ['D', 'u32', D]], grid1d(rows))[0];
}
