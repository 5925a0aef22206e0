/**
 * Layer and RMS norm as one row kernel each way. The forward also writes
 * each row's (mean, rstd), so the backward neither recomputes them nor needs
 * x̂ kept; dγ and dβ (trainable norms only) come from the same stats through
 * columnSum (below).
 */
import * as tf from '@tensorflow/tfjs-core';
import { dispatch, elementCount, grid1d, webgpuBackend, type KernelAttrs, type KernelInputs } from './dispatch.js';
import { ELT_HEADER, reducers, ROW_HEADER, rowWG, treeReduce } from './rows.js';
import { flags } from '../flags.js';

/**
 * The row in registers: a workgroup of WG threads holds a D-wide row as E vec4s a thread (E ≤ 8), so it is read from
 * memory once rather than once per pass. WG is the power of two (32-256) that leaves each thread about four vec4s:
 * GPT-2 small's D = 768 is 64 threads of 3, the notebooks' 256 is 32 of 2. The loop kernels below took 18.6 µs
 * (forward) and 21.6 µs (backward) a [2,048, 768] norm on the H100 in session 20's profile, three and two passes
 * over the row with two 128-wide reduction trees each, for 6.3 MB that stream in ~3 µs. undefined: D is not a
 * multiple of 4, or too wide (the loop kernels).
 */
export function registerRow(D: number): { WG: number; E: number } | undefined {
  if (D % 4 !== 0 || !flags.webgpuVec4Elementwise) return undefined;
  const D4 = D / 4;
  let WG = 32;
  while (WG < 256 && WG * 4 < D4) WG *= 2;
  const E = Math.ceil(D4 / WG);
  return E <= 8 ? { WG, E } : undefined;
}

/**
 * The register-row kernels' row sums through subgroup operations (SHARELORA_WEBGPU_SUBGROUP_NORMS=1, where the device
 * has `subgroups`): subgroupAdd within each subgroup, then one barrier and a fixed-order sum of the subgroups' partials,
 * instead of a log2(WG)-level tree with a barrier per level. The partial's slot is lid / subgroup size: subgroups are
 * contiguous runs of the local index on the GPUs this runs on (NVIDIA, lavapipe), which WGSL itself does not promise.
 */
function subgroupNorms(): boolean {
  const on = flags.webgpuSubgroupNorms && webgpuBackend().device.features.has('subgroups');
  if (on) normStats.subgroupDispatches++;
  return on;
}

/** norm dispatches that summed by subgroups (the tests check the path ran) */
export const normStats = { subgroupDispatches: 0 };

/** WGSL: `rowSum2(v, lid, sg)`, the workgroup's sum of a vec2 per thread by subgroups */
const subgroupSum2 = (WG: number) => `
var<workgroup> sred : array<vec2<f32>, ${WG}>;
fn rowSum2(v : vec2<f32>, lid : u32, sg : u32) -> vec2<f32> {
  let s = subgroupAdd(v);
  if (lid % sg == 0u) { sred[lid / sg] = s; }
  workgroupBarrier();
  var t = vec2<f32>(0.0);
  for (var i = 0u; i < (${WG}u + sg - 1u) / sg; i++) { t += sred[i]; }
  workgroupBarrier();
  return t;
}`;

/**
 * WGSL declarations for the row sums a kernel calls through sum1 / sum2: the subgroup sum (`sub`), else the shared-memory
 * trees of rows.ts, wgSum for one f32 (`vec2` false) or treeSum2 for a vec2
 */
const sumDecls = (WG: number, sub: boolean, vec2: boolean) => sub ? subgroupSum2(WG)
  : vec2 ? `\nvar<workgroup> red2 : array<vec2<f32>, ${WG}>;\n${treeReduce('treeSum2', 'red2', 'vec2<f32>', WG, (a, b) => `${a} + ${b}`)}` : reducers(WG);
/** WGSL: the workgroup's sum of the f32 `expr` (sum1) or of the vec2 `expr` (sum2) */
const sum1 = (expr: string, sub: boolean) => sub ? `rowSum2(vec2<f32>(${expr}, 0.0), lid, sg).x` : `wgSum(${expr}, lid)`;
const sum2 = (expr: string, sub: boolean) => sub ? `rowSum2(${expr}, lid, sg)` : `treeSum2(${expr}, lid)`;

/** ROW_HEADER, with the subgroup size as `sg` where the sums take subgroups */
const rowHeaderSg = (WG: number, sub: boolean) => sub ? `
@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>, @builtin(num_workgroups) n3 : vec3<u32>, @builtin(subgroup_size) sg : u32) {
  let lid = l3.x;
  let row = w3.y * n3.x + w3.x;
  if (row >= P.rows) { return; }` : ROW_HEADER(WG);

const each = (E: number, f: (e: number) => string) => Array.from({ length: E }, (_, e) => f(e)).join('\n  ');
const sumOf = (E: number, f: (e: number) => string) => Array.from({ length: E }, (_, e) => f(e)).join(' + ');
/** WGSL: the thread's E vec4s of row `base` of ARR as name0..name{E-1}, zeros past the row's end */
const loadRow = (name: string, arr: string, WG: number, E: number) =>
  each(E, (e) => `var ${name}${e} = vec4<f32>(0.0); if (lid + ${e * WG}u < P.D4) { ${name}${e} = ${arr}[base + lid + ${e * WG}u]; }`);

/**
 * The register-row forward: y = norm(r)·g (+ b) and the row's (mean, rstd), where r is x, or (`add`, the fused
 * residual step) h = x + a, which it also writes as H.
 */
function normForwardBodyV4(WG: number, E: number, rms: boolean, sub: boolean, add: boolean): string {
  const r = add ? 'h' : 'x';
  return `${sumDecls(WG, sub, false)}
${rowHeaderSg(WG, sub)}
  let base = row * P.D4;
  ${loadRow('x', 'X', WG, E)}${add ? `
  ${loadRow('a', 'A', WG, E)}
  ${each(E, (e) => `let h${e} = x${e} + a${e}; if (lid + ${e * WG}u < P.D4) { H[base + lid + ${e * WG}u] = h${e}; }`)}` : ''}
  ${rms ? 'let mean = 0.0;' : `let mean = ${sum1(sumOf(E, (e) => `dot(${r}${e}, vec4<f32>(1.0))`), sub)} / f32(P.D);`}
  var s2 = 0.0;
  ${each(E, (e) => `if (lid + ${e * WG}u < P.D4) { let d = ${r}${e} - mean; s2 += dot(d, d); }`)}
  let rstd = inverseSqrt(${sum1('s2', sub)} / f32(P.D) + P.eps);
  ${each(E, (e) => `{ let i = lid + ${e * WG}u; if (i < P.D4) { Y[base + i] = (${r}${e} - mean) * rstd * G[i]${rms ? '' : ' + Bt[i]'}; } }`)}
  if (lid == 0u) { S[row * 2u] = mean; S[row * 2u + 1u] = rstd; }
}`;
}

/** y = (x-mean)·rstd·g + b (layer) or x·rstd·g (rms); stats [rows, 2] = (mean, rstd). */
export function normForward({ inputs, attrs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo[] {
  const { x, gamma, beta } = inputs;
  const rms = !!attrs.rms;
  const D = x.shape[x.shape.length - 1];
  const rows = elementCount(x) / D;
  const ins = rms ? [x, gamma] : [x, gamma, beta];
  const reg = registerRow(D);
  if (reg) {
    const { WG, E } = reg;
    const sub = subgroupNorms();
    return dispatch({
      key: `norm_fwd_v4_${rms ? 'rms' : 'ln'}_${WG}_${E}${sub ? '_sg' : ''}`,
      enables: sub ? ['subgroups'] : undefined,
      outputs: [{ name: 'Y', type: 'vec4<f32>' }, { name: 'S' }],
      inputs: rms ? [{ name: 'X', type: 'vec4<f32>' }, { name: 'G', type: 'vec4<f32>' }] : [{ name: 'X', type: 'vec4<f32>' }, { name: 'G', type: 'vec4<f32>' }, { name: 'Bt', type: 'vec4<f32>' }],
      body: () => normForwardBodyV4(WG, E, rms, sub, false),
    }, ins, [{ shape: x.shape }, { shape: [rows, 2] }], [['rows', 'u32', rows], ['D', 'u32', D], ['D4', 'u32', D / 4], ['eps', 'f32', attrs.eps as number]], grid1d(rows));
  }
  const WG = rowWG(D);
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

/**
 * The WGSL of a norm's backward row kernel, shared by normBackward and
 * addNormBackward: dx from dy, the normed input (bound as `inName`), gamma and
 * the forward's stats, plus DH (the residual's own gradient) when `withDh`.
 */
function normBackwardBody(WG: number, rms: boolean, inName: 'X' | 'H', withDh: boolean): string {
  return `${reducers(WG)}
${ROW_HEADER(WG)}
  let base = row * P.D;
  let mean = S[row * 2u];
  let rstd = S[row * 2u + 1u];
  var sg = 0.0;
  var sgx = 0.0;
  for (var i = lid; i < P.D; i += ${WG}u) {
    let g = DY[base + i] * G[i];
    sg += g;
    sgx += g * (${inName}[base + i] - mean) * rstd;
  }
  let mg = ${rms ? '0.0' : 'wgSum(sg, lid) / f32(P.D)'};
  let mgx = wgSum(sgx, lid) / f32(P.D);
  for (var i = lid; i < P.D; i += ${WG}u) {
    let xh = (${inName}[base + i] - mean) * rstd;
    DX[base + i] = rstd * (DY[base + i] * G[i] - mg - xh * mgx)${withDh ? ' + DH[base + i]' : ''};
  }
}`;
}

/**
 * normBackwardBody with the row held in registers, four floats a component (registerRow): dy and x read once,
 * and the two row sums (Σg, Σg·x̂) in one tree of vec2s instead of two trees.
 */
function normBackwardBodyV4(WG: number, E: number, rms: boolean, withDh: boolean, sub: boolean): string {
  return `${sumDecls(WG, sub, true)}
${rowHeaderSg(WG, sub)}
  let base = row * P.D4;
  let mean = S[row * 2u];
  let rstd = S[row * 2u + 1u];
  ${loadRow('dy', 'DY', WG, E)}
  ${loadRow('x', 'X', WG, E)}
  var acc = vec2<f32>(0.0);
  ${each(E, (e) => `{ let i = lid + ${e * WG}u; if (i < P.D4) { let g = dy${e} * G[i]; acc += vec2<f32>(dot(g, vec4<f32>(1.0)), dot(g, (x${e} - mean) * rstd)); } }`)}
  let tot = ${sum2('acc', sub)} / f32(P.D);
  let mg = ${rms ? '0.0' : 'tot.x'};
  let mgx = tot.y;
  ${each(E, (e) => `{ let i = lid + ${e * WG}u; if (i < P.D4) { let xh = (x${e} - mean) * rstd; DX[base + i] = rstd * (dy${e} * G[i] - mg - xh * mgx)${withDh ? ' + DH[base + i]' : ''}; } }`)}
}`;
}

/** dx of a layer/RMS norm from dy, x, gamma and the forward's stats. */
export function normBackward({ inputs, attrs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo {
  const { dy, x, gamma, stats } = inputs;
  const rms = !!attrs.rms;
  const D = x.shape[x.shape.length - 1];
  const rows = elementCount(x) / D;
  const reg = registerRow(D);
  if (reg) {
    const v4 = 'vec4<f32>', sub = subgroupNorms();
    return dispatch({
      key: `norm_bwd_v4_${rms ? 'rms' : 'ln'}_${reg.WG}_${reg.E}${sub ? '_sg' : ''}`,
      enables: sub ? ['subgroups'] : undefined,
      outputs: [{ name: 'DX', type: v4 }],
      inputs: [{ name: 'DY', type: v4 }, { name: 'X', type: v4 }, { name: 'G', type: v4 }, { name: 'S' }],
      body: () => normBackwardBodyV4(reg.WG, reg.E, rms, false, sub),
    }, [dy, x, gamma, stats], [{ shape: x.shape }], [['rows', 'u32', rows], ['D', 'u32', D], ['D4', 'u32', D / 4]], grid1d(rows))[0];
  }
  const WG = rowWG(D);
  // layer: dx = rstd·(g - mean(g) - xhat·mean(g·xhat)), g = dy·gamma
  // rms:   dx = rstd·(g - xhat·mean(g·xhat)),  xhat = x·rstd
  return dispatch({
    key: `norm_bwd_${rms ? 'rms' : 'ln'}_${WG}`,
    outputs: [{ name: 'DX' }],
    inputs: [{ name: 'DY' }, { name: 'X' }, { name: 'G' }, { name: 'S' }],
    body: () => normBackwardBody(WG, rms, 'X', false),
  }, [dy, x, gamma, stats], [{ shape: x.shape }], [['rows', 'u32', rows], ['D', 'u32', D]], grid1d(rows))[0];
}

/**
 * GPT-2's residual step into its next LayerNorm, h = x + a and y = LN(h), in
 * one row kernel instead of an add and a norm: outputs h, y and the row
 * stats. Every thread reads back only the elements of h it wrote itself.
 */
export function addNormForward({ inputs, attrs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo[] {
  const { x, a, gamma, beta } = inputs;
  const D = x.shape[x.shape.length - 1];
  const rows = elementCount(x) / D;
  const reg = registerRow(D);
  if (reg) {
    const { WG, E } = reg, v4 = 'vec4<f32>', sub = subgroupNorms();
    return dispatch({
      key: `add_norm_fwd_v4_ln_${WG}_${E}${sub ? '_sg' : ''}`,
      enables: sub ? ['subgroups'] : undefined,
      outputs: [{ name: 'H', type: v4 }, { name: 'Y', type: v4 }, { name: 'S' }],
      inputs: [{ name: 'X', type: v4 }, { name: 'A', type: v4 }, { name: 'G', type: v4 }, { name: 'Bt', type: v4 }],
      body: () => normForwardBodyV4(WG, E, false, sub, true),
    }, [x, a, gamma, beta], [{ shape: x.shape }, { shape: x.shape }, { shape: [rows, 2] }],
    [['rows', 'u32', rows], ['D', 'u32', D], ['D4', 'u32', D / 4], ['eps', 'f32', attrs.eps as number]], grid1d(rows));
  }
  const WG = rowWG(D);
  return dispatch({
    key: `add_norm_fwd_ln_${WG}`,
    outputs: [{ name: 'H' }, { name: 'Y' }, { name: 'S' }],
    inputs: [{ name: 'X' }, { name: 'A' }, { name: 'G' }, { name: 'Bt' }],
    body: () => `${reducers(WG)}
${ROW_HEADER(WG)}
  let base = row * P.D;
  var s = 0.0;
  for (var i = lid; i < P.D; i += ${WG}u) { let h = X[base + i] + A[base + i]; H[base + i] = h; s += h; }
  let mean = wgSum(s, lid) / f32(P.D);
  var s2 = 0.0;
  for (var i = lid; i < P.D; i += ${WG}u) { let d = H[base + i] - mean; s2 += d * d; }
  let rstd = inverseSqrt(wgSum(s2, lid) / f32(P.D) + P.eps);
  for (var i = lid; i < P.D; i += ${WG}u) {
    Y[base + i] = (H[base + i] - mean) * rstd * G[i] + Bt[i];
  }
  if (lid == 0u) { S[row * 2u] = mean; S[row * 2u + 1u] = rstd; }
}`,
  }, [x, a, gamma, beta], [{ shape: x.shape }, { shape: x.shape }, { shape: [rows, 2] }],
  [['rows', 'u32', rows], ['D', 'u32', D], ['eps', 'f32', attrs.eps as number]], grid1d(rows));
}

/**
 * The gradient of h = x + a for both x and a: dh (from h's own consumers;
 * absent when h is used only by its norm) plus the LayerNorm's dx from dy,
 * in one pass instead of the norm's backward, the tape's add of the two and
 * the add's reshapes.
 */
export function addNormBackward({ inputs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo {
  const { dy, h, gamma, stats, dh } = inputs;
  const D = h.shape[h.shape.length - 1];
  const rows = elementCount(h) / D;
  const withDh = !!dh;
  const reg = registerRow(D);
  if (reg) {
    const v4 = 'vec4<f32>', sub = subgroupNorms();
    return dispatch({
      key: `add_norm_bwd_v4_ln_${reg.WG}_${reg.E}_${withDh ? 'dh' : 'nodh'}${sub ? '_sg' : ''}`,
      enables: sub ? ['subgroups'] : undefined,
      outputs: [{ name: 'DX', type: v4 }],
      // the body reads the normed input as X
      inputs: [{ name: 'DY', type: v4 }, { name: 'X', type: v4 }, { name: 'G', type: v4 }, { name: 'S' }, ...(withDh ? [{ name: 'DH', type: v4 }] : [])],
      body: () => normBackwardBodyV4(reg.WG, reg.E, false, withDh, sub),
    }, withDh ? [dy, h, gamma, stats, dh!] : [dy, h, gamma, stats], [{ shape: h.shape }], [['rows', 'u32', rows], ['D', 'u32', D], ['D4', 'u32', D / 4]], grid1d(rows))[0];
  }
  const WG = rowWG(D);
  return dispatch({
    key: `add_norm_bwd_ln_${WG}_${withDh ? 'dh' : 'nodh'}`,
    outputs: [{ name: 'DX' }],
    inputs: [{ name: 'DY' }, { name: 'H' }, { name: 'G' }, { name: 'S' }, ...(withDh ? [{ name: 'DH' }] : [])],
    body: () => normBackwardBody(WG, false, 'H', withDh),
  }, withDh ? [dy, h, gamma, stats, dh!] : [dy, h, gamma, stats], [{ shape: h.shape }], [['rows', 'u32', rows], ['D', 'u32', D]], grid1d(rows))[0];
}

/**
 * Column sums over many rows, for the parameter gradients of full training: dβ and a bias's gradient (Σ_rows dy),
 * and with x and the forward's stats dγ (Σ_rows dy·x̂, x̂ = (x − mean)·rstd, or x·rstd for RMS). tfjs's
 * composition rebuilt x̂ in five full-size ops and summed through a transpose and a reduce, 9 dispatches a
 * norm (the pretraining census, bench/NOTES.md entry 25). Two passes: workgroups of 64 columns × 4 row lanes
 * each sum a stretch of rows (consecutive threads read consecutive columns of a row), then one thread per
 * column adds the stretches. Output [D].
 */
export function columnSum({ inputs, attrs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo {
  const { dy, x, stats } = inputs;
  const rms = !!attrs.rms, weighted = !!x;
  if (weighted !== !!stats) throw new Error('columnSum: x and stats come together');
  const D = dy.shape[dy.shape.length - 1];
  const rows = elementCount(dy) / D;
  const groupsX = Math.ceil(D / 64);
  // about 512 workgroups in all, each stretch at least 64 rows
  const chunks = Math.max(1, Math.min(Math.ceil(rows / 64), Math.ceil(512 / groupsX)));
  const per = Math.ceil(rows / chunks);
  const [partial] = dispatch({
    key: `col_sum_partial_${weighted ? (rms ? 'rms' : 'ln') : 'plain'}`,
    outputs: [{ name: 'Q' }],
    inputs: weighted ? [{ name: 'DY' }, { name: 'X' }, { name: 'S' }] : [{ name: 'DY' }],
    body: () => `
var<workgroup> red : array<f32, 256>;
@compute @workgroup_size(64, 4, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>) {
  let col = w3.x * 64u + l3.x;
  let r0 = w3.y * P.per;
  let r1 = min(P.rows, r0 + P.per);
  var s = 0.0;
  if (col < P.D) {
    for (var r = r0 + l3.y; r < r1; r += 4u) {
      ${weighted ? `s += DY[r * P.D + col] * (X[r * P.D + col]${rms ? '' : ' - S[2u * r]'}) * S[2u * r + 1u];` : 's += DY[r * P.D + col];'}
    }
  }
  red[l3.y * 64u + l3.x] = s;
  workgroupBarrier();
  if (l3.y == 0u && col < P.D) {
    Q[w3.y * P.D + col] = (red[l3.x] + red[64u + l3.x]) + (red[128u + l3.x] + red[192u + l3.x]);
  }
}`,
  }, weighted ? [dy, x, stats] : [dy], [{ shape: [chunks, D] }], [['rows', 'u32', rows], ['D', 'u32', D], ['per', 'u32', per]], [groupsX, chunks, 1]);
  const [out] = dispatch({
    key: 'col_sum_reduce',
    outputs: [{ name: 'O' }],
    inputs: [{ name: 'Q' }],
    body: () => `${ELT_HEADER}
  var s = 0.0;
  for (var c = 0u; c < P.chunks; c++) { s += Q[c * P.n + i]; }
  O[i] = s;
}`,
  }, [partial], [{ shape: [D] }], [['n', 'u32', D], ['chunks', 'u32', chunks]], grid1d(Math.ceil(D / 256)));
  tf.backend().disposeData(partial.dataId);
  return out;
}
