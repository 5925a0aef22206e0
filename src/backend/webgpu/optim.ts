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
import { flags } from '../flags.js';
import { dispatch, elementCount, grid1d, webgpuBackend, type KernelAttrs, type KernelInputs, type UniformField } from './dispatch.js';
import { ELT_HEADER, reducers } from './rows.js';
import { forgetFrozen } from './frozen.js';

/**
 * Above flags.gradStatsSplit elements (SHARELORA_GRAD_STATS_SPLIT, default 4,096) the one workgroup's loop is a
 * step's long pole: full training's gradients of 0.07–2.1 M elements (the pretraining census, bench/NOTES.md entry
 * 25) took an estimated 0.1–4 ms each that way, one dependent load after another. They are summed in two passes instead: up to STATS_GROUPS workgroups of partial
 * [Σg², any non-finite] over a grid-strided range, then one workgroup over the partials. A different summation
 * order than the one-workgroup loop, so the sums differ in the last bits; small tensors keep it. The threshold was
 * 65,536 until session 20: GPT-2 small's [2304, 8] adapter gradients took 39 µs each in one workgroup, and two passes
 * were faster in the step (bench/NOTES.md "35 and 36, measured").
 */
const STATS_GROUPS = 512;

/** WGSL: adds x² of G[start], G[start + step], … below n to `s`, and sets `bad` where one is Inf or NaN */
const sumSquares = (G: string, start: string, step: string, n: string): string => `for (var i = ${start}; i < ${n}; i += ${step}) {
    let x = ${G}[i];
    // exponent all ones = Inf or NaN (a bit test: the compiler may assume x == x)
    if ((bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u) { bad = 1.0; }
    s += x * x;
  }`;

export function gradStatsKernel({ inputs }: { inputs: KernelInputs }): tf.TensorInfo {
  const { g } = inputs;
  const WG = 256;
  const n = elementCount(g);
  if (n > flags.gradStatsSplit) return gradStatsTwoPass(g, n);
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
  ${sumSquares('G', 'lid', `${WG}u`, 'P.n')}
  s = wgSum(s, lid);
  bad = wgMax(bad, lid);
  if (lid == 0u) { S[0] = s; S[1] = 1.0 - bad; }
}`,
  }, [g], [{ shape: [2] }], [['n', 'u32', n]], [1, 1, 1])[0];
}

function gradStatsTwoPass(g: tf.TensorInfo, n: number): tf.TensorInfo {
  const WG = 256;
  const groups = Math.min(STATS_GROUPS, Math.ceil(n / (WG * 8)));
  const [partial] = dispatch({
    key: 'optim_grad_stats_partial',
    outputs: [{ name: 'S' }],
    inputs: [{ name: 'G' }],
    body: () => `${reducers(WG)}
@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>) {
  let lid = l3.x;
  var s = 0.0;
  var bad = 0.0;
  ${sumSquares('G', `w3.x * ${WG}u + lid`, `P.groups * ${WG}u`, 'P.n')}
  s = wgSum(s, lid);
  bad = wgMax(bad, lid);
  if (lid == 0u) { S[2u * w3.x] = s; S[2u * w3.x + 1u] = bad; }
}`,
  }, [g], [{ shape: [groups, 2] }], [['n', 'u32', n], ['groups', 'u32', groups]], [groups, 1, 1]);
  const [out] = dispatch({
    key: 'optim_grad_stats_reduce',
    outputs: [{ name: 'S' }],
    inputs: [{ name: 'Q' }],
    body: () => `${reducers(WG)}
@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>) {
  let lid = l3.x;
  var s = 0.0;
  var bad = 0.0;
  for (var i = lid; i < P.groups; i += ${WG}u) { s += Q[2u * i]; bad = max(bad, Q[2u * i + 1u]); }
  s = wgSum(s, lid);
  bad = wgMax(bad, lid);
  if (lid == 0u) { S[0] = s; S[1] = 1.0 - bad; }
}`,
  }, [partial], [{ shape: [2] }], [['groups', 'u32', groups]], [1, 1, 1]);
  tf.backend().disposeData(partial.dataId);
  return out;
}

/** AdamW's hyperparameters, in the order the kernels below keep them (their uniforms; adamwInPlaceKernel's H) */
const HYPER = ['gscale', 'beta1', 'beta2', 'decay', 'sqrtBc2', 'eps', 'stepSize'] as const;
const hyperUniforms = (attrs: KernelAttrs): UniformField[] => HYPER.map((k): UniformField => [k, 'f32', attrs[k] as number]);

/**
 * WGSL `fn upd(p, g0, m, v) -> vec3<f32>`: torch AdamW's new [p, m, v] for one element, the same float32 operations
 * in every kernel below. `at(k)` is the WGSL expression of hyperparameter k, `scale` the gradient's, and where
 * `keep` holds p, m and v come back unchanged (a pipelined step the device did not apply).
 */
const adamwFn = (at: (k: typeof HYPER[number]) => string, scale: string, keep?: string): string => `
fn upd(p : f32, g0 : f32, m : f32, v : f32) -> vec3<f32> {
  ${keep ? `if (${keep}) { return vec3<f32>(p, m, v); }` : ''}
  let g = g0 * ${scale};
  let m1 = ${at('beta1')} * m + (1.0 - ${at('beta1')}) * g;
  let v1 = ${at('beta2')} * v + (1.0 - ${at('beta2')}) * (g * g);
  return vec3<f32>(p * ${at('decay')} - (m1 / (sqrt(v1) / ${at('sqrtBc2')} + ${at('eps')})) * ${at('stepSize')}, m1, v1);
}`;
/** the uniforms' form of adamwFn: P.beta1, …; with a control tensor C, its scale and its apply flag */
const uniformAdamwFn = (ctrl: boolean): string => adamwFn((k) => `P.${k}`, ctrl ? 'C[0]' : 'P.gscale', ctrl ? 'C[1] == 0.0' : undefined);

/**
 * attrs: decay = 1 − lr·wd, beta1, beta2, eps, stepSize = lr/(1 − β1ᵗ), sqrtBc2 = √(1 − β2ᵗ), gscale.
 * With input c (a pipelined step, SHARELORA_WEBGPU_PIPELINE) the clipping coefficient and whether to apply at
 * all come from C = stepControl's [scale, ok] instead of gscale: the host has not read the step's statistics
 * yet. With ok = 0, p, m and v are written back unchanged, so a step the host later finds non-finite (or a bad
 * batch) has changed nothing, as on the normal path; adamwManyKernel does the same.
 */
export function adamwKernel({ inputs, attrs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo[] {
  const { p, g, m, v, c } = inputs;
  const n = elementCount(p);
  return dispatch({
    key: c ? 'optim_adamw_ctrl' : 'optim_adamw',
    outputs: [{ name: 'Po' }, { name: 'Mo' }, { name: 'Vo' }],
    inputs: [{ name: 'Pi' }, { name: 'G' }, { name: 'Mi' }, { name: 'Vi' }, ...(c ? [{ name: 'C' }] : [])],
    body: () => `${uniformAdamwFn(!!c)}
${ELT_HEADER}
  let r = upd(Pi[i], G[i], Mi[i], Vi[i]);
  Po[i] = r.x; Mo[i] = r.y; Vo[i] = r.z;
}`,
  }, c ? [p, g, m, v, c] : [p, g, m, v], [{ shape: p.shape }, { shape: p.shape }, { shape: p.shape }], [
    ['n', 'u32', n], ...hyperUniforms(attrs),
  ], grid1d(Math.ceil(n / 256)));
}

/**
 * The pipelined step's control, from the values the step reads back (the
 * trainer's `both`: loss, nCheck device-check counts, then Σg² and the finite
 * flag of each of n gradients): C = [clipping coefficient, 1 if the update
 * may be applied else 0]. ok needs a finite loss, every gradient finite, a
 * finite Σg² over all of them (float32: where it overflows, the host redoes
 * the step on the normal path, which sums in float64), and the batch's
 * device check passed (counts as deviceCheckPassed reads them). The
 * coefficient is the host's min(1, maxNorm / (‖g‖ + 1e-6)), in float32.
 */
export function stepControlKernel({ inputs, attrs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo {
  const { values } = inputs;
  const nCheck = attrs.nCheck as number, n = attrs.n as number;
  if (nCheck !== 0 && nCheck !== 4) throw new Error(`stepControl: ${nCheck} device-check counts (expected 0 or 4)`);
  return dispatch({
    key: `optim_step_control_${nCheck}`,
    outputs: [{ name: 'C' }],
    inputs: [{ name: 'V' }],
    body: () => `
fn finite(x : f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }
@compute @workgroup_size(1, 1, 1)
fn main() {
  var ok = finite(V[0]);
  ${nCheck ? 'if (V[1] != 0.0 || V[2] != 0.0 || V[3] != 0.0 || !(V[4] > 0.0)) { ok = false; }' : ''}
  var s = 0.0;
  for (var k = 0u; k < P.n; k++) {
    s += V[${1 + nCheck}u + 2u * k];
    if (V[${2 + nCheck}u + 2u * k] != 1.0) { ok = false; }
  }
  if (!finite(s)) { ok = false; }
  var scale = 1.0;
  if (P.maxNorm > 0.0) { scale = min(1.0, P.maxNorm / (sqrt(s) + 1e-6)); }
  C[0] = select(0.0, scale, ok);
  C[1] = select(0.0, 1.0, ok);
}`,
  }, [values], [{ shape: [2] }], [['n', 'u32', n], ['maxNorm', 'f32', attrs.maxNorm as number]], [1, 1, 1])[0];
}

/**
 * Multi-tensor forms (SHARELORA_WEBGPU_MULTI_TENSOR=1): one engine op for all
 * of a step's gradients or parameters, and as few dispatches as the device's
 * storage-buffer bindings allow (a tensor is a binding; WGSL cannot index
 * bindings, so each kernel is generated for its tensor count). A LoRA step
 * updates a handful of small tensors, each its own op and dispatch before;
 * at notebook scale the step's host work per op is what costs. Each tensor's
 * arithmetic is the single-tensor kernel's, in the same order.
 */
const storageLimit = (): number => (webgpuBackend().device.limits.maxStorageBuffersPerShaderStage ?? 8);

/** inputs g0…g{n−1}; one output [n, 2]: row k is gradStatsKernel of g_k */
export function gradStatsManyKernel({ inputs, attrs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo {
  const n = attrs.n as number;
  const gs = Array.from({ length: n }, (_, k) => inputs[`g${k}`]);
  const WG = 256;
  const per = Math.max(1, storageLimit() - 1);
  const out = webgpuBackend().makeTensorInfo([n, 2], 'float32');
  for (let row0 = 0; row0 < n; row0 += per) {
    const chunk = gs.slice(row0, row0 + per);
    const k = chunk.length;
    dispatch({
      key: `optim_grad_stats_many_${k}`,
      outputs: [{ name: 'S' }],
      inputs: chunk.map((_, j) => ({ name: `G${j}` })),
      body: () => `${reducers(WG)}
@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>) {
  let lid = l3.x;
  let t = w3.x;
  var s = 0.0;
  var bad = 0.0;
  ${chunk.map((_, j) => `${j ? 'else ' : ''}if (t == ${j}u) {
    ${sumSquares(`G${j}`, 'lid', `${WG}u`, `P.n${j}`)}
  }`).join('\n  ')}
  s = wgSum(s, lid);
  bad = wgMax(bad, lid);
  if (lid == 0u) { S[2u * (P.row0 + t)] = s; S[2u * (P.row0 + t) + 1u] = 1.0 - bad; }
}`,
    }, chunk, [out], [['row0', 'u32', row0], ...chunk.map((g, j): UniformField => [`n${j}`, 'u32', elementCount(g)])], [k, 1, 1]);
  }
  return out;
}

/** inputs p_k, g_k, m_k, v_k for k < n, attrs as adamwKernel's plus n; outputs [p0', m0', v0', p1', …] */
export function adamwManyKernel({ inputs, attrs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo[] {
  const n = attrs.n as number;
  const c = inputs.c;
  const per = Math.max(1, Math.floor((storageLimit() - (c ? 1 : 0)) / 7));
  const outs: tf.TensorInfo[] = [];
  for (let k0 = 0; k0 < n; k0 += per) {
    const ks = Array.from({ length: Math.min(per, n - k0) }, (_, j) => k0 + j);
    const ins = ks.flatMap((k) => [inputs[`p${k}`], inputs[`g${k}`], inputs[`m${k}`], inputs[`v${k}`]]);
    // element i of the chunk belongs to the first tensor whose running end exceeds it
    const ends: number[] = [];
    let total = 0;
    for (const k of ks) { total += elementCount(inputs[`p${k}`]); ends.push(total); }
    const count = ks.length;
    outs.push(...dispatch({
      key: `optim_adamw_many_${count}${c ? '_ctrl' : ''}`,
      outputs: ks.flatMap((_, j) => [{ name: `Po${j}` }, { name: `Mo${j}` }, { name: `Vo${j}` }]),
      inputs: [...ks.flatMap((_, j) => [{ name: `Pi${j}` }, { name: `G${j}` }, { name: `Mi${j}` }, { name: `Vi${j}` }]), ...(c ? [{ name: 'C' }] : [])],
      body: () => `${uniformAdamwFn(!!c)}
${ELT_HEADER}
  ${ks.map((_, j) => `${j ? 'else ' : ''}if (i < P.e${j}) {
    let o = i${j ? ` - P.e${j - 1}` : ''};
    let r = upd(Pi${j}[o], G${j}[o], Mi${j}[o], Vi${j}[o]);
    Po${j}[o] = r.x; Mo${j}[o] = r.y; Vo${j}[o] = r.z;
  }`).join('\n  ')}
}`,
    }, c ? [...ins, c] : ins, ks.flatMap((k) => { const shape = inputs[`p${k}`].shape; return [{ shape }, { shape }, { shape }]; }), [
      ['n', 'u32', total], ...hyperUniforms(attrs),
      ...ends.map((e, j): UniformField => [`e${j}`, 'u32', e]),
    ], grid1d(Math.ceil(total / 256))));
  }
  return outs;
}

/**
 * AdamW written into p, m and v themselves (SHARELORA_WEBGPU_ADAMW_INPLACE, bench/NOTES.md entry 43). The
 * out-of-place kernels above make three new tensors a parameter a step, so every dispatch binds new buffers and a
 * new uniform buffer (the step size changes every step): a createBindGroup (~65 µs on Dawn's null device here,
 * most of a dispatch's host cost), three pool acquisitions and three releases, an engine op. Here the step's
 * hyperparameters are written once into the long-lived `h` by one small dispatch, and each parameter's dispatch
 * binds only buffers that stay the same from step to step (p, m, v; the replayed step's gradient; `h`; a
 * uniform holding the element count), so its bind group comes from the cache after the first step.
 * inputs: h [8], optional c (a pipelined step's [scale, ok], as adamwKernel's), p_k, g_k, m_k, v_k for k < n;
 * attrs: adamwKernel's and n. No outputs: p_k, m_k and v_k change. The caller (ops.adamwInPlace) makes sure no
 * other tensor shares their buffers. Same arithmetic, in the same order, as adamwKernel.
 */
export function adamwInPlaceKernel({ inputs, attrs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo[] {
  const n = attrs.n as number;
  const { h, c } = inputs;
  // H = HYPER's seven, then 1 to apply or 0 to keep p, m and v; with c, gscale and apply come from it
  dispatch({
    key: c ? 'optim_adamw_hyper_ctrl' : 'optim_adamw_hyper',
    outputs: [{ name: 'H' }],
    inputs: c ? [{ name: 'C' }] : [],
    body: () => `
@compute @workgroup_size(1, 1, 1)
fn main() {
  ${HYPER.map((k, j) => `H[${j}] = ${c && k === 'gscale' ? 'C[0]' : `P.${k}`};`).join(' ')}
  H[${HYPER.length}] = ${c ? 'C[1]' : '1.0'};
}`,
  }, c ? [c] : [], [h], hyperUniforms(attrs), [1, 1, 1]);
  const at = (k: typeof HYPER[number]) => `H[${HYPER.indexOf(k)}]`;
  for (let k = 0; k < n; k++) {
    const p = inputs[`p${k}`];
    const len = elementCount(p);
    dispatch({
      key: 'optim_adamw_inplace',
      outputs: [{ name: 'Pw' }, { name: 'Mw' }, { name: 'Vw' }],
      inputs: [{ name: 'G' }, { name: 'H' }],
      body: () => `${adamwFn(at, at('gscale'))}
${ELT_HEADER}
  if (H[${HYPER.length}] == 0.0) { return; }
  let r = upd(Pw[i], G[i], Mw[i], Vw[i]);
  Pw[i] = r.x; Mw[i] = r.y; Vw[i] = r.z;
}`,
    }, [inputs[`g${k}`], h], [p, inputs[`m${k}`], inputs[`v${k}`]], [['n', 'u32', len]], grid1d(Math.ceil(len / 256)));
  }
  // tfjs keeps the values a read brought back and answers the next read from them: those are stale now, and so
  // is a transposed copy of p (frozen.ts), which one of p's reshapes could have been given
  const be = webgpuBackend();
  for (let k = 0; k < n; k++) {
    for (const x of ['p', 'm', 'v']) { const d = be.tensorMap.get(inputs[`${x}${k}`].dataId); if (d) d.values = null; }
    forgetFrozen(inputs[`p${k}`].dataId);
  }
  return [];
}
