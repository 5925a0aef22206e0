/**
 * GELU (tanh and erf forms) and SiLU, forward and backward, as one
 * elementwise pass each instead of the fallback's chain of ops (nine for
 * gelu_new), each a full pass over x.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { dispatch, elementCount, grid1d, type KernelAttrs, type KernelInputs } from './dispatch.js';
import { ELT_HEADER } from './rows.js';
import { flags } from '../flags.js';

/**
 * The math of each kind on a value of type T (f32, or vec4<f32> four elements a thread). WGSL's clamp takes no
 * mixed scalar and vector arguments, hence the splatted bounds.
 */
const ACT: Record<string, (T: string) => { fwd: string; bwd: string }> = {
  // gelu_new: 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))); tanh's argument is
  // clamped because some drivers build tanh from exp and overflow to NaN
  gelu_tanh: (T) => ({
    fwd: `let u = clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), ${T}(-15.0), ${T}(15.0)); let y = 0.5 * x * (1.0 + tanh(u));`,
    bwd: `let u = clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), ${T}(-15.0), ${T}(15.0)); let t = tanh(u);
          let y = g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 0.134145 * x * x));`,
  }),
  // exact GELU; WGSL has no erf, so Abramowitz–Stegun 7.1.26 (|err| < 1.5e-7), the one tfjs's Erf kernels use
  gelu_erf: () => ({
    fwd: `let y = 0.5 * x * (1.0 + erf_(x * 0.7071067811865476));`,
    bwd: `let y = g * (0.5 * (1.0 + erf_(x * 0.7071067811865476)) + x * exp(-0.5 * x * x) * 0.3989422804014327);`,
  }),
  silu: () => ({
    fwd: `let y = x / (1.0 + exp(-x));`,
    bwd: `let s = 1.0 / (1.0 + exp(-x)); let y = g * s * (1.0 + x * (1.0 - s));`,
  }),
};

const ERF = (T: string) => `
fn erf_(v : ${T}) -> ${T} {
  let a = abs(v);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let p = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign(v) * (1.0 - p * exp(-a * a));
}`;

export type ActKind = 'gelu_tanh' | 'gelu_erf' | 'silu';

/**
 * WGSL functions on vec4s for kernels that apply an activation inside another pass (the GEMM's A loads and
 * epilogue, gemm.ts): `act4_(x)` = act(x), and `dact4_(x, g)` = g·act'(x), the same expressions as this file's
 * kernels, so a fused GEMM computes what the GELU kernels and a plain GEMM would.
 */
export function actFunctions(kind: ActKind): string {
  const f = ACT[kind]('vec4<f32>');
  return `${kind === 'gelu_erf' ? ERF('vec4<f32>') : ''}
fn act4_(x : vec4<f32>) -> vec4<f32> {
  ${f.fwd}
  return y;
}
fn dact4_(x : vec4<f32>, g : vec4<f32>) -> vec4<f32> {
  ${f.bwd}
  return y;
}`;
}

/**
 * One pass over x (and dy). Where the element count is a multiple of 4 (every hidden size we train), each
 * thread takes a vec4: GPT-2 small's [8, 256, 3,072] GELU ran at ~1.2 TB/s one float a thread (42 µs forward,
 * 54 backward a layer, session 20's profile), and 16-byte loads are how a streaming kernel nears the HBM's rate.
 */
export function activation({ inputs, attrs }: { inputs: KernelInputs; attrs: KernelAttrs }): tf.TensorInfo {
  const { x, dy } = inputs;
  const kind = attrs.kind as string;
  const grad = !!dy;
  const n = elementCount(x);
  const vec = n % 4 === 0 && flags.webgpuVec4Elementwise;
  const T = vec ? 'vec4<f32>' : 'f32';
  const units = vec ? n / 4 : n;
  return dispatch({
    key: `act_${kind}_${grad ? 'bwd' : 'fwd'}${vec ? '_v4' : ''}`,
    outputs: [{ name: 'Y', type: T }],
    inputs: grad ? [{ name: 'X', type: T }, { name: 'DY', type: T }] : [{ name: 'X', type: T }],
    body: () => `${kind === 'gelu_erf' ? ERF(T) : ''}
${ELT_HEADER}
  let x = X[i];
  ${grad ? 'let g = DY[i];' : ''}
  ${grad ? ACT[kind](T).bwd : ACT[kind](T).fwd}
  Y[i] = y;
}`,
  }, grad ? [x, dy] : [x], [{ shape: x.shape }], [['n', 'u32', units]], grid1d(Math.ceil(units / 256)))[0];
}
