/** Shared WGSL pieces of the row kernels (norms, softmaxes, cross-entropy). */
/** WGSL: tree sum / max over a workgroup; call in uniform control flow. */
export function reducers(WG: number): string {
  return `
var<workgroup> red : array<f32, ${WG}>;
fn wgSum(v : f32, lid : u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn wgMax(v : f32, lid : u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;
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

