/**
 * WGSL kernels other than the GEMM: norms, activations, the attention
 * softmax and its backward, softmax cross-entropy. Each is a tfjs kernel
 * registered for the webgpu backend (registerKernels below), so it runs
 * through engine().runKernel like any built-in op; gradients are wired in
 * ops.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { dispatch, grid1d, webgpuBackend } from './dispatch.js';
import { installHostCaches } from './host.js';
import { gemm, type GemmTile, TILES } from './gemm.js';
import { attentionBackward, attentionForward } from './attention.js';
import { adamwKernel, gradStatsKernel } from './optim.js';
import { ELT_HEADER, reducers, ROW_HEADER, rowWG } from './rows.js';

type Inputs = Record<string, tf.TensorInfo>;
type Attrs = Record<string, unknown>;

const size = (t: tf.TensorInfo) => t.shape.reduce((a, b) => a * b, 1);

// ---------------------------------------------------------------- norms

/** y = (x-mean)·rstd·g + b (layer) or x·rstd·g (rms); stats [rows, 2] = (mean, rstd). */
function normForward({ inputs, attrs }: { inputs: Inputs; attrs: Attrs }): tf.TensorInfo[] {
  const { x, gamma, beta } = inputs;
  const rms = !!attrs.rms;
  const D = x.shape[x.shape.length - 1];
  const rows = size(x) / D;
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
function normBackward({ inputs, attrs }: { inputs: Inputs; attrs: Attrs }): tf.TensorInfo {
  const { dy, x, gamma, stats } = inputs;
  const rms = !!attrs.rms;
  const D = x.shape[x.shape.length - 1];
  const rows = size(x) / D;
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

// ---------------------------------------------------------------- activations

const ACT: Record<string, { fwd: string; bwd: string }> = {
  // gelu_new: 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))); tanh's argument is
  // clamped because some drivers build tanh from exp and overflow to NaN
  gelu_tanh: {
    fwd: `let u = clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -15.0, 15.0); let y = 0.5 * x * (1.0 + tanh(u));`,
    bwd: `let u = clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -15.0, 15.0); let t = tanh(u);
          let y = g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 0.134145 * x * x));`,
  },
  // exact GELU; WGSL has no erf, so Abramowitz–Stegun 7.1.26 (|err| < 1.5e-7), the one tfjs's Erf kernels use
  gelu_erf: {
    fwd: `let y = 0.5 * x * (1.0 + erf_(x * 0.7071067811865476));`,
    bwd: `let y = g * (0.5 * (1.0 + erf_(x * 0.7071067811865476)) + x * exp(-0.5 * x * x) * 0.3989422804014327);`,
  },
  silu: {
    fwd: `let y = x / (1.0 + exp(-x));`,
    bwd: `let s = 1.0 / (1.0 + exp(-x)); let y = g * s * (1.0 + x * (1.0 - s));`,
  },
};

const ERF = `
fn erf_(v : f32) -> f32 {
  let a = abs(v);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let p = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign(v) * (1.0 - p * exp(-a * a));
}`;

function activation({ inputs, attrs }: { inputs: Inputs; attrs: Attrs }): tf.TensorInfo {
  const { x, dy } = inputs;
  const kind = attrs.kind as string;
  const grad = !!dy;
  const n = size(x);
  const f = ACT[kind];
  return dispatch({
    key: `act_${kind}_${grad ? 'bwd' : 'fwd'}`,
    outputs: [{ name: 'Y' }],
    inputs: grad ? [{ name: 'X' }, { name: 'DY' }] : [{ name: 'X' }],
    body: () => `${kind === 'gelu_erf' ? ERF : ''}
${ELT_HEADER}
  let x = X[i];
  ${grad ? 'let g = DY[i];' : ''}
  ${grad ? f.bwd : f.fwd}
  Y[i] = y;
}`,
  }, grad ? [x, dy] : [x], [{ shape: x.shape }], [['n', 'u32', n]], grid1d(Math.ceil(n / 256)))[0];
}

// ---------------------------------------------------------------- cross-entropy

/**
 * Per row: one pass of online softmax (running max and rescaled sum), then
 * loss_i = lse_i − logit[label_i] where label ≠ -100. A second one-workgroup
 * kernel averages over the valid rows. Outputs: mean loss [], lse [N], count [1].
 */
function xentForward({ inputs }: { inputs: Inputs }): tf.TensorInfo[] {
  const { logits, labels } = inputs;
  const [N, V] = logits.shape;
  const WG = 256;
  const [rowLoss, lse] = dispatch({
    key: `xent_rows_${WG}`,
    outputs: [{ name: 'RL' }, { name: 'LSE' }],
    inputs: [{ name: 'L' }, { name: 'Y', type: 'i32' }],
    body: () => `
var<workgroup> rm : array<f32, ${WG}>;
var<workgroup> rs : array<f32, ${WG}>;
${ROW_HEADER(WG)}
  let base = row * P.V;
  var m = -3.0e38;
  var s = 0.0;
  for (var j = lid; j < P.V; j += ${WG}u) {
    let x = L[base + j];
    let nm = max(m, x);
    s = s * exp(m - nm) + exp(x - nm);
    m = nm;
  }
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
  for (var i = lid; i < P.n; i += 256u) { if (Y[i] != -100) { s += RL[i]; c += 1.0; } }
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
function xentBackward({ inputs }: { inputs: Inputs }): tf.TensorInfo {
  const { logits, labels, lse, count, dy } = inputs;
  const [N, V] = logits.shape;
  const gx = Math.ceil(V / 256);
  return dispatch({
    key: 'xent_bwd',
    outputs: [{ name: 'DL' }],
    inputs: [{ name: 'L' }, { name: 'Y', type: 'i32' }, { name: 'LSE' }, { name: 'C' }, { name: 'G' }],
    body: () => `
@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>) {
  let j = w3.x * 256u + l3.x;
  let row = w3.y + w3.z * 65535u;
  if (j >= P.V || row >= P.rows) { return; }
  let y = Y[row];
  let idx = row * P.V + j;
  if (y == -100) { DL[idx] = 0.0; return; }
  let sc = G[0] / max(C[0], 1.0);
  var p = exp(L[idx] - LSE[row]);
  if (i32(j) == y) { p = p - 1.0; }
  DL[idx] = p * sc;
}`,
  }, [logits, labels, lse, count, dy], [{ shape: [N, V] }], [['rows', 'u32', N], ['V', 'u32', V]], [gx, Math.min(N, 65535), Math.ceil(N / 65535)])[0];
}

// ---------------------------------------------------------------- matmul kernels

/**
 * Our GEMM as a kernel: a [.., M, K] (or [.., K, M] with transA), b likewise;
 * optional bias [N]; optional low-rank u [M, r] and v ([N, r] if lrVT else [r, N]).
 */
function slMatMul({ inputs, attrs }: { inputs: Inputs; attrs: Attrs }): tf.TensorInfo {
  const { a, b, bias, u, v } = inputs;
  const transA = !!attrs.transA, transB = !!attrs.transB;
  const ra = a.shape.length, rb = b.shape.length;
  const M = transA ? a.shape[ra - 1] : a.shape[ra - 2];
  const K = transA ? a.shape[ra - 2] : a.shape[ra - 1];
  const N = transB ? b.shape[rb - 2] : b.shape[rb - 1];
  const batchA = size(a) / (M * K), batchB = size(b) / (K * N);
  const batch = (attrs.batch as number) ?? Math.max(batchA, batchB);
  const outShape = (attrs.outShape as number[]) ?? (ra > 2 ? [...a.shape.slice(0, -2), M, N] : [M, N]);
  const tile = attrs.tile ? TILES[attrs.tile as string] as GemmTile : undefined;
  return gemm({
    a, b, M, N, K, transA, transB, batch,
    strideA: batchA === 1 ? 0 : M * K, strideB: batchB === 1 ? 0 : K * N,
    bH: attrs.bH as number | undefined, bHkv: attrs.bHkv as number | undefined, bRep: attrs.bRep as number | undefined,
    alpha: (attrs.alpha as number) ?? 1,
    bias,
    lowRank: u && v ? { u, v, r: u.shape[u.shape.length - 1], s: attrs.lrScale as number, vT: !!attrs.lrVT } : undefined,
    outShape, tile,
  });
}

let originalBatchMatMul: tf.KernelConfig | undefined;

/**
 * tfjs's BatchMatMul for webgpu, routed to our GEMM when the batch dims are
 * equal or one side is unbatched (every matMul the models issue, e.g. the
 * tied LM head); anything else goes to the original kernel.
 */
function batchMatMul(args: { inputs: Inputs; attrs: Attrs; backend: tf.KernelBackend }): tf.TensorInfo {
  const { a, b } = args.inputs;
  const transA = !!args.attrs.transposeA, transB = !!args.attrs.transposeB;
  const ra = a.shape.length, rb = b.shape.length;
  const M = transA ? a.shape[ra - 1] : a.shape[ra - 2];
  const K = transA ? a.shape[ra - 2] : a.shape[ra - 1];
  const N = transB ? b.shape[rb - 2] : b.shape[rb - 1];
  const bA = a.shape.slice(0, -2), bB = b.shape.slice(0, -2);
  const nA = bA.reduce((x, y) => x * y, 1), nB = bB.reduce((x, y) => x * y, 1);
  const same = bA.length === bB.length && bA.every((d, i) => d === bB[i]);
  const ok = a.dtype === 'float32' && b.dtype === 'float32' && (same || nA === 1 || nB === 1) && M * N * K > 0;
  if (!ok) return originalBatchMatMul!.kernelFunc(args as never) as tf.TensorInfo;
  const batchShape = nA >= nB ? bA : bB;
  return gemm({
    a, b, M, N, K, transA, transB, batch: Math.max(nA, nB),
    strideA: nA === 1 ? 0 : M * K, strideB: nB === 1 ? 0 : K * N,
    outShape: [...batchShape, M, N],
  });
}

/** tfjs's own webgpu BatchMatMul (for the benchmark's comparison); undefined until registerKernels replaced it. */
export function tfjsBatchMatMul(): tf.KernelConfig | undefined {
  return originalBatchMatMul;
}

export const KERNELS = {
  matmul: 'ShareLoraMatMul',
  normFwd: 'ShareLoraNorm',
  normBwd: 'ShareLoraNormGrad',
  act: 'ShareLoraActivation',
  attn: 'ShareLoraAttention',
  attnGrad: 'ShareLoraAttentionGrad',
  gradStats: 'ShareLoraGradStats',
  adamw: 'ShareLoraAdamW',
  xent: 'ShareLoraSoftmaxXent',
  xentGrad: 'ShareLoraSoftmaxXentGrad',
} as const;

let registered = false;

export function registerKernels(opts: { replaceBatchMatMul?: boolean } = {}): void {
  if (tf.getBackend() === 'webgpu') installHostCaches(webgpuBackend());
  if (registered) return;
  registered = true;
  const reg = (kernelName: string, kernelFunc: (a: { inputs: Inputs; attrs: Attrs }) => tf.TensorInfo | tf.TensorInfo[]) =>
    tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  reg(KERNELS.matmul, slMatMul);
  reg(KERNELS.normFwd, normForward);
  reg(KERNELS.normBwd, normBackward);
  reg(KERNELS.act, activation);
  reg(KERNELS.attn, attentionForward);
  reg(KERNELS.attnGrad, attentionBackward);
  reg(KERNELS.gradStats, gradStatsKernel);
  reg(KERNELS.adamw, adamwKernel);
  reg(KERNELS.xent, xentForward);
  reg(KERNELS.xentGrad, xentBackward);
  if (opts.replaceBatchMatMul ?? process.env.SHARELORA_WEBGPU_MATMUL !== 'tfjs') {
    originalBatchMatMul = tf.getKernel('BatchMatMul', 'webgpu');
    if (originalBatchMatMul) {
      tf.unregisterKernel('BatchMatMul', 'webgpu');
      tf.registerKernel({ kernelName: 'BatchMatMul', backendName: 'webgpu', kernelFunc: batchMatMul as unknown as tf.KernelFunc });
    }
  }
}
