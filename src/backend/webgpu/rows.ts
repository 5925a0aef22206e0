/** Shared WGSL pieces of the row kernels (norms, softmaxes, cross-entropy) and the attention kernels. */

/**
 * Attention's causal and key-padding bias exactly as the tfjs fallback adds it
 * ((1 − m)·−1e9 in float32), as WGSL `biasAt(b, i, j)`; the mask binding is KM,
 * read as i32: tfjs's webgpu Cast from int32 to float32 relabels the buffer
 * without converting it. Used by the softmax rows (attention.ts) and both
 * flash kernels, which must add the same bias.
 */
export const ATTENTION_BIAS = (causal: boolean, masked: boolean) => `
fn biasAt(b : u32, i : u32, j : u32) -> f32 {
  var o = 0.0;
  ${causal ? 'if (j > i) { o = o - 1e9; }' : ''}
  ${masked ? 'o = o + (1.0 - f32(KM[b * P.T + j])) * -1e9;' : ''}
  return o;
}`;

/** WGSL: four consecutive floats of a scalar array as a vec4 (the flash kernels' unaligned-safe load) */
export const vec4At = (arr: string, base: string) => `vec4<f32>(${arr}[${base}], ${arr}[${base} + 1u], ${arr}[${base} + 2u], ${arr}[${base} + 3u])`;
/**
 * WGSL: `body` four times with c the constant 0u..3u, for the per-component loops over a vec4. A WGSL
 * `for` leaves c a run-time index into a register vector, which the GPU compiler may move to local
 * memory (device/HOPPER.md: index register arrays only with compile-time constants).
 */
export const each4 = (body: string) => [0, 1, 2, 3].map((c) => `{ const c = ${c}u; ${body} }`).join(' ');

/**
 * WGSL: `fn NAME(v : T, lid : u32) -> T`, a workgroup's tree reduction of one T a thread through the workgroup
 * array ARR (WG long, declared by the caller), `combine(a, b)` at each level; call in uniform control flow.
 */
export function treeReduce(name: string, arr: string, T: string, WG: number, combine: (a: string, b: string) => string): string {
  return `fn ${name}(v : ${T}, lid : u32) -> ${T} {
  ${arr}[lid] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { ${arr}[lid] = ${combine(`${arr}[lid]`, `${arr}[lid + s]`)}; }
    workgroupBarrier();
  }
  let r = ${arr}[0];
  workgroupBarrier();
  return r;
}`;
}

/** WGSL: tree sum / max over a workgroup; call in uniform control flow. */
export function reducers(WG: number): string {
  return `
var<workgroup> red : array<f32, ${WG}>;
${treeReduce('wgSum', 'red', 'f32', WG, (a, b) => `${a} + ${b}`)}
${treeReduce('wgMax', 'red', 'f32', WG, (a, b) => `max(${a}, ${b})`)}`;
}

export const ROW_HEADER = (WG: number) => `
@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>, @builtin(num_workgroups) n3 : vec3<u32>) {
  let lid = l3.x;
  let row = w3.y * n3.x + w3.x;
  if (row >= P.rows) { return; }`;

export const ELT_HEADER = `
@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) l3 : vec3<u32>, @builtin(workgroup_id) w3 : vec3<u32>, @builtin(num_workgroups) n3 : vec3<u32>) {
  let i = (w3.y * n3.x + w3.x) * 256u + l3.x;
  if (i >= P.n) { return; }`;

export function rowWG(len: number): number {
  return len >= 2048 ? 256 : len >= 512 ? 128 : 64;
}

