/**
 * How alike two weight matrices are, for asking whether LoRA's per-layer
 * A_i (or B_i, or ΔW_i = (alpha/r)·B_i·A_i) resemble each other across
 * layers: the premise behind sharing one of them (ShareLoRA, arXiv
 * 2406.10785).
 *
 * Three measures, each answering a different question:
 * - subspaceSimilarity: do they span the same directions? The LoRA paper's
 *   φ (Hu et al. 2021, Sec. 7.2), from principal angles: 1 for the same
 *   subspace, 0 for orthogonal ones, about k/d for random k-dim subspaces
 *   of R^d. Blind to scale and to any mixing within the subspace.
 * - cosineSimilarity: are they the same matrix up to scale (entry by entry)?
 *   For A and B alone this is not gauge-invariant: B·A = (B·R⁻¹)·(R·A), so
 *   two layers can compute the same ΔW with dissimilar factors.
 * - linearCKA (Kornblith et al. 2019): do the rows, seen as examples, have
 *   the same centred Gram matrix? Invariant to rotations of the columns and
 *   to scale, so it is blind to the gauge R when R is orthogonal.
 *
 * Exact SVD in float64 (one-sided Jacobi): the matrices are small (r × d ≤
 * 64 × 1024), and a float32 tensor SVD would blur the values near 0 and 1
 * that the question turns on.
 *
 * @example
 * subspaceSimilarity(A0, A1)                        // row spaces of two r × d_in matrices
 * const [attn] = await adapterSimilarity(adapter);  // per target module, L × L matrices
 * attn.B.cka[0][5]                                  // layer 0's B against layer 5's
 */
import type * as tf from '@tensorflow/tfjs-core';
import { checkOptions, optionKeys } from '../util/options.js';

/** A dense float64 matrix, row-major. */
interface Mat { rows: number; cols: number; data: Float64Array }

/** One row per array (number[][], or rows read from a tensor with arraySync()). */
export type MatrixLike = ArrayLike<number>[];

function toMat(what: string, x: MatrixLike): Mat {
  if (!Array.isArray(x) || x.length === 0) throw new TypeError(`${what}: expected a non-empty matrix (an array of rows); got ${x === null ? 'null' : Array.isArray(x) ? 'an empty array' : typeof x}`);
  const cols = x[0]?.length;
  if (typeof cols !== 'number' || cols === 0) throw new TypeError(`${what}: row 0 must be a non-empty array of numbers`);
  const data = new Float64Array(x.length * cols);
  x.forEach((row, i) => {
    if (row?.length !== cols) throw new RangeError(`${what}: row ${i} has ${row?.length ?? 'no'} entries, row 0 has ${cols} (rows must be of equal length)`);
    for (let j = 0; j < cols; j++) {
      const v = row[j];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new RangeError(`${what}: entry [${i}][${j}] is ${String(v)}; every entry must be a finite number`);
      data[i * cols + j] = v;
    }
  });
  return { rows: x.length, cols, data };
}

const transpose = (m: Mat): Mat => {
  const data = new Float64Array(m.data.length);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) data[j * m.rows + i] = m.data[i * m.cols + j];
  return { rows: m.cols, cols: m.rows, data };
};

/** a·b */
function matmul(a: Mat, b: Mat): Mat {
  const out = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let k = 0; k < a.cols; k++) {
      const v = a.data[i * a.cols + k];
      if (v === 0) continue;
      for (let j = 0; j < b.cols; j++) out[i * b.cols + j] += v * b.data[k * b.cols + j];
    }
  }
  return { rows: a.rows, cols: b.cols, data: out };
}

/** aᵀ·b without forming aᵀ */
function tmatmul(a: Mat, b: Mat): Mat {
  const out = new Float64Array(a.cols * b.cols);
  for (let k = 0; k < a.rows; k++) {
    for (let i = 0; i < a.cols; i++) {
      const v = a.data[k * a.cols + i];
      if (v === 0) continue;
      for (let j = 0; j < b.cols; j++) out[i * b.cols + j] += v * b.data[k * b.cols + j];
    }
  }
  return { rows: a.cols, cols: b.cols, data: out };
}

const frob2 = (m: Mat) => m.data.reduce((s, v) => s + v * v, 0);
const dot = (a: Float64Array, b: Float64Array) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * b[i]; return s; };
/** tr(a·b) for square a, b of one size */
const traceOfProduct = (a: Mat, b: Mat) => { let s = 0; for (let i = 0; i < a.rows; i++) for (let k = 0; k < a.cols; k++) s += a.data[i * a.cols + k] * b.data[k * b.cols + i]; return s; };

/** Thin SVD: m × n = U (m × k) · diag(s) · Vᵀ (V n × k), k = min(m, n), s descending. */
interface Svd { U: Mat; s: number[]; V: Mat }

/**
 * One-sided Jacobi (Hestenes): rotate pairs of columns until all are
 * orthogonal; the column norms are then the singular values. Accurate to a
 * few ulps even for tiny singular values, which the Gram-matrix route is not.
 */
function svd(x: Mat): Svd {
  if (x.rows < x.cols) {
    const t = svd(transpose(x));
    return { U: t.V, s: t.s, V: t.U };
  }
  const m = x.rows, n = x.cols;
  const cols = Array.from({ length: n }, (_, j) => Float64Array.from({ length: m }, (_, i) => x.data[i * n + j]));
  const v = Array.from({ length: n }, (_, j) => { const e = new Float64Array(n); e[j] = 1; return e; });
  const eps = 2.220446049250313e-16;
  let rotated = true, sweeps = 0;
  while (rotated) {
    if (++sweeps > 80) throw new Error(`svd: one-sided Jacobi did not converge in 80 sweeps on a ${m} × ${n} matrix`);
    rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const a = dot(cols[p], cols[p]), b = dot(cols[q], cols[q]), g = dot(cols[p], cols[q]);
        if (g === 0 || Math.abs(g) <= eps * Math.sqrt(a * b)) continue;
        rotated = true;
        const zeta = (b - a) / (2 * g);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t), s = c * t;
        for (const w of [cols, v]) {
          const wp = w[p], wq = w[q];
          for (let i = 0; i < wp.length; i++) { const xp = wp[i], xq = wq[i]; wp[i] = c * xp - s * xq; wq[i] = s * xp + c * xq; }
        }
      }
    }
  }
  const sig = cols.map((c) => Math.sqrt(dot(c, c)));
  const order = sig.map((_, j) => j).sort((i, j) => sig[j] - sig[i]);
  const U = new Float64Array(m * n), V = new Float64Array(n * n);
  order.forEach((j, k) => {
    for (let i = 0; i < m; i++) U[i * n + k] = sig[j] > 0 ? cols[j][i] / sig[j] : 0;
    for (let i = 0; i < n; i++) V[i * n + k] = v[j][i];
  });
  return { U: { rows: m, cols: n, data: U }, s: order.map((j) => sig[j]), V: { rows: n, cols: n, data: V } };
}

/** singular values above the usual numerical-rank tolerance max(m, n)·eps·σ₁ */
const numericalRank = (s: number[], m: number, n: number) => s.filter((v) => v > Math.max(m, n) * 2.220446049250313e-16 * s[0]).length;

/** the first k columns of m */
const firstColumns = (m: Mat, k: number): Mat => {
  const data = new Float64Array(m.rows * k);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < k; j++) data[i * k + j] = m.data[i * m.cols + j];
  return { rows: m.rows, cols: k, data };
};

/** orthonormal basis (d × k) of the top-k singular directions; `basis` the singular vectors on the side compared */
function topDirections(what: string, field: string, f: Svd, basis: Mat, k: number | undefined, shape: [number, number]): Mat {
  const rank = f.s[0] > 0 ? numericalRank(f.s, ...shape) : 0;
  if (rank === 0) throw new RangeError(`${what}: ${field} is all zeros, so it spans no subspace (an untrained LoRA B is zero: compare it after training)`);
  const kk = k ?? rank;
  if (kk > rank) throw new RangeError(`${what}: ${field} has rank ${rank} (of ${shape[0]} × ${shape[1]}), fewer than the ${kk} directions asked for; pick i/j/k ≤ ${rank}`);
  return firstColumns(basis, kk);
}

/** ‖Uᵢᵀ Uⱼ‖²_F / min(i, j) for orthonormal bases Uᵢ (d × i), Uⱼ (d × j) */
const phi = (ui: Mat, uj: Mat) => Math.min(1, frob2(tmatmul(ui, uj)) / Math.min(ui.cols, uj.cols));

function checkCount(what: string, field: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`${what}: option "${field}" must be a positive integer (a number of singular directions); got ${String(v)}`);
  return v;
}

export interface SubspaceOptions {
  /** how many of x's top right-singular vectors span its subspace (default: all, x's numerical rank) */
  i?: number;
  /** the same for y (default: y's numerical rank) */
  j?: number;
}

/**
 * The LoRA paper's normalised subspace similarity between the row spaces of
 * x and y (matrices with the same number of columns d, e.g. two r × d_in
 * LoRA A's): φ = ‖Uᵢᵀ Uⱼ‖²_F / min(i, j), where Uᵢ holds x's top-i right-
 * singular vectors. It is the mean squared cosine of the min(i, j) principal
 * angles between the two subspaces. Compare column spaces (B, d_out × r) by
 * passing the transposes.
 */
export function subspaceSimilarity(x: MatrixLike, y: MatrixLike, options: SubspaceOptions = {}): number {
  const what = 'subspaceSimilarity';
  checkOptions(what, options, optionKeys<SubspaceOptions>()(['i', 'j']));
  const X = toMat(`${what} x`, x), Y = toMat(`${what} y`, y);
  if (X.cols !== Y.cols) throw new RangeError(`${what}: x has ${X.cols} columns and y has ${Y.cols}; the row spaces compared must live in the same space (transpose both to compare column spaces)`);
  const fx = svd(X), fy = svd(Y);
  return phi(topDirections(what, 'x', fx, fx.V, checkCount(what, 'i', options.i), [X.rows, X.cols]),
    topDirections(what, 'y', fy, fy.V, checkCount(what, 'j', options.j), [Y.rows, Y.cols]));
}

/** ⟨x, y⟩_F / (‖x‖_F ‖y‖_F): the cosine of the two matrices flattened; in [−1, 1]. */
export function cosineSimilarity(x: MatrixLike, y: MatrixLike): number {
  const what = 'cosineSimilarity';
  const X = toMat(`${what} x`, x), Y = toMat(`${what} y`, y);
  if (X.rows !== Y.rows || X.cols !== Y.cols) throw new RangeError(`${what}: x is ${X.rows} × ${X.cols} and y is ${Y.rows} × ${Y.cols}; they must have the same shape`);
  return cosineOf(what, dot(X.data, Y.data), frob2(X), frob2(Y));
}

function cosineOf(what: string, xy: number, xx: number, yy: number): number {
  if (xx === 0 || yy === 0) throw new RangeError(`${what}: ${xx === 0 ? 'x' : 'y'} is all zeros; the cosine of a zero matrix is undefined`);
  return Math.max(-1, Math.min(1, xy / Math.sqrt(xx * yy)));
}

/** subtract each column's mean (over the rows, the examples) */
function centerColumns(m: Mat): Mat {
  const data = Float64Array.from(m.data);
  for (let j = 0; j < m.cols; j++) {
    let mu = 0;
    for (let i = 0; i < m.rows; i++) mu += data[i * m.cols + j];
    mu /= m.rows;
    for (let i = 0; i < m.rows; i++) data[i * m.cols + j] -= mu;
  }
  return { rows: m.rows, cols: m.cols, data };
}

/**
 * Linear centred kernel alignment between x (n × p) and y (n × q), rows as
 * the n examples: ‖ỹᵀx̃‖²_F / (‖x̃ᵀx̃‖_F ‖ỹᵀỹ‖_F) with columns centred. In
 * [0, 1]; 1 when y is x rotated and scaled; with one column each it is the
 * squared Pearson correlation.
 */
export function linearCKA(x: MatrixLike, y: MatrixLike): number {
  const what = 'linearCKA';
  const X = centerColumns(toMat(`${what} x`, x)), Y = centerColumns(toMat(`${what} y`, y));
  if (X.rows !== Y.rows) throw new RangeError(`${what}: x has ${X.rows} rows and y has ${Y.rows}; both need one row per example (the same n)`);
  return ckaOf(what, frob2(tmatmul(Y, X)), frob2(tmatmul(X, X)), frob2(tmatmul(Y, Y)));
}

function ckaOf(what: string, xy2: number, xx2: number, yy2: number): number {
  if (xx2 === 0 || yy2 === 0) throw new RangeError(`${what}: ${xx2 === 0 ? 'x' : 'y'} has no variance across its rows (constant columns), so CKA is undefined`);
  return Math.max(0, Math.min(1, xy2 / Math.sqrt(xx2 * yy2)));
}

/** L × L matrices, [i][j] comparing layer i with layer j. */
export interface SimilarityMatrices {
  /** φ of the subspaces (A: row space in R^d_in; B and ΔW: column space in R^d_out), top k directions */
  subspace: number[][];
  /** cosine of the flattened matrices */
  cosine: number[][];
  /** linear CKA; rows as examples: A's d_in input coordinates (Aᵀ), B's and ΔW's d_out output coordinates */
  cka: number[][];
}

/** One target module (a role such as `attn.c_attn`) across the layers it adapts. */
export interface ModuleSimilarity {
  module: string;
  /** the layer of each row and column of the matrices */
  layers: number[];
  A: SimilarityMatrices;
  B: SimilarityMatrices;
  /** ΔW_i = (alpha/r)·B_i·A_i, d_out × d_in (every measure is scale-free, so alpha/r drops out) */
  deltaW: SimilarityMatrices;
}

export interface LowRankOptions {
  /** singular directions per subspace (default: the rank r, i.e. the whole row space of A, column space of B and ΔW) */
  k?: number;
}

/** One layer's factors as LoRA stores them: A is r × d_in, B is d_out × r. */
export interface LowRankFactors { A: MatrixLike; B: MatrixLike }

interface Factors { A: Mat; B: Mat }

const square = (L: number, f: (i: number, j: number) => number): number[][] => {
  const out = Array.from({ length: L }, () => new Array<number>(L).fill(0));
  for (let i = 0; i < L; i++) for (let j = i; j < L; j++) out[i][j] = out[j][i] = f(i, j);
  return out;
};

/**
 * The three measures between every pair of layers for A_i, B_i and
 * ΔW_i = B_i·A_i, given each layer's factors. ΔW (d_out × d_in, up to
 * 1024 × 1024) is never formed: its inner products, centred Grams and
 * singular vectors all reduce to r × r products of the factors.
 */
export function lowRankSimilarity(layers: LowRankFactors[], options: LowRankOptions = {}): Omit<ModuleSimilarity, 'module' | 'layers'> {
  const what = 'lowRankSimilarity';
  checkOptions(what, options, optionKeys<LowRankOptions>()(['k']));
  if (!Array.isArray(layers) || layers.length === 0) throw new TypeError(`${what}: expected a non-empty array of { A, B } (one per layer)`);
  const f = layers.map((l, i) => {
    if (l === null || typeof l !== 'object') throw new TypeError(`${what}: layer ${i} must be { A, B }; got ${String(l)}`);
    checkOptions(`${what} layer ${i}`, l, ['A', 'B']);
    return { A: toMat(`${what} layer ${i} A`, l.A), B: toMat(`${what} layer ${i} B`, l.B) };
  });
  return similarityOfFactors(what, f, checkCount(what, 'k', options.k));
}

function similarityOfFactors(what: string, f: Factors[], k: number | undefined): Omit<ModuleSimilarity, 'module' | 'layers'> {
  const { A: A0, B: B0 } = f[0];
  f.forEach(({ A, B }, i) => {
    if (A.cols !== A0.cols || B.rows !== B0.rows) throw new RangeError(`${what}: layer ${i} maps ${A.cols} → ${B.rows} features, layer 0 ${A0.cols} → ${B0.rows}; every layer must have the same shape`);
    if (A.rows !== B.cols) throw new RangeError(`${what}: layer ${i} has A with ${A.rows} rows but B with ${B.cols} columns; both must equal the rank r`);
  });
  const L = f.length;
  const At = f.map(({ A }) => transpose(A));
  // subspaces: A's row space; B's column space; ΔW = B·A = U_B·(S_B V_Bᵀ A), so ΔW's left singular vectors are U_B times those of the small S_B V_Bᵀ A
  const rowA = f.map(({ A }, i) => { const s = svd(A); return topDirections(what, `layer ${i} A`, s, s.V, k, [A.rows, A.cols]); });
  const svdB = f.map(({ B }) => svd(B));
  const colB = f.map(({ B }, i) => topDirections(what, `layer ${i} B`, svdB[i], svdB[i].U, k, [B.rows, B.cols]));
  const colW = f.map(({ A, B }, i) => {
    const sb = svdB[i];
    const rb = sb.s[0] > 0 ? numericalRank(sb.s, B.rows, B.cols) : 0;
    if (rb === 0) throw new RangeError(`${what}: layer ${i} B is all zeros, so ΔW is zero and spans no subspace (an untrained LoRA B is zero: compare it after training)`);
    const ub = firstColumns(sb.U, rb);
    const vbT = transpose(firstColumns(sb.V, rb));
    for (let a = 0; a < rb; a++) for (let c = 0; c < vbT.cols; c++) vbT.data[a * vbT.cols + c] *= sb.s[a];
    const small = svd(matmul(vbT, A));
    return matmul(ub, topDirections(what, `layer ${i} ΔW`, small, small.U, k, [B.rows, A.cols]));
  });
  // Grams in r × r: ⟨B_iA_i, B_jA_j⟩ = tr((B_iᵀB_j)(A_jA_iᵀ)); CKA of ΔW (rows = outputs) needs centred B̃ and G_i = A_iA_iᵀ
  const Bc = f.map(({ B }) => centerColumns(B));
  const G = At.map((a) => tmatmul(a, a));
  const wDot = (i: number, j: number) => traceOfProduct(tmatmul(f[i].B, f[j].B), tmatmul(At[j], At[i]));
  const wCka = (i: number, j: number) => { const M = tmatmul(Bc[j], Bc[i]); return traceOfProduct(matmul(transpose(M), G[j]), matmul(M, G[i])); };
  const Ac = At.map(centerColumns);
  const m = (g: (i: number, j: number) => number) => square(L, g);
  const ww = f.map((_, i) => wDot(i, i)), wc = f.map((_, i) => wCka(i, i));
  return {
    A: {
      subspace: m((i, j) => phi(rowA[i], rowA[j])),
      cosine: m((i, j) => cosineOf(`${what} A (layers ${i}, ${j})`, dot(f[i].A.data, f[j].A.data), frob2(f[i].A), frob2(f[j].A))),
      cka: m((i, j) => ckaOf(`${what} A (layers ${i}, ${j})`, frob2(tmatmul(Ac[j], Ac[i])), frob2(tmatmul(Ac[i], Ac[i])), frob2(tmatmul(Ac[j], Ac[j])))),
    },
    B: {
      subspace: m((i, j) => phi(colB[i], colB[j])),
      cosine: m((i, j) => cosineOf(`${what} B (layers ${i}, ${j})`, dot(f[i].B.data, f[j].B.data), frob2(f[i].B), frob2(f[j].B))),
      cka: m((i, j) => ckaOf(`${what} B (layers ${i}, ${j})`, frob2(tmatmul(Bc[j], Bc[i])), frob2(tmatmul(Bc[i], Bc[i])), frob2(tmatmul(Bc[j], Bc[j])))),
    },
    deltaW: {
      subspace: m((i, j) => phi(colW[i], colW[j])),
      cosine: m((i, j) => cosineOf(`${what} ΔW (layers ${i}, ${j})`, wDot(i, j), ww[i], ww[j])),
      cka: m((i, j) => ckaOf(`${what} ΔW (layers ${i}, ${j})`, wCka(i, j), wc[i], wc[j])),
    },
  };
}

/** What adapterSimilarity reads: a ShareLoraAdapter's modules (structural, so analysis does not import the adapter code). */
export interface AdapterLike {
  modules: readonly { role: string; layer: number; hook: { A: tf.Tensor; B: tf.Tensor } }[];
}

async function readMat(what: string, t: tf.Tensor, cache: Map<tf.Tensor, Mat>): Promise<Mat> {
  const hit = cache.get(t);
  if (hit) return hit;
  if (t.shape.length !== 2) throw new RangeError(`${what}: expected a 2-D tensor, got shape [${t.shape.join(', ')}]`);
  // one read per tensor: a ShareA adapter's A is the same tensor in every layer
  const m = { rows: t.shape[0], cols: t.shape[1], data: Float64Array.from(await t.data() as Float32Array) };
  cache.set(t, m);
  return m;
}

/**
 * For each target module of a (trained) LoRA or ShareLoRA adapter, the L × L
 * similarity of its layers' A_i, B_i and ΔW_i = (alpha/r)·B_i·A_i by
 * principal angles (φ at the top k directions), cosine and linear CKA. For a
 * shared matrix (ShareA's A) every entry is 1 by construction.
 * @example
 * for (const m of await adapterSimilarity(adapter)) display(plot.heatmap(m.B.subspace, { title: m.module }));
 */
export async function adapterSimilarity(adapter: AdapterLike, options: LowRankOptions = {}): Promise<ModuleSimilarity[]> {
  const what = 'adapterSimilarity';
  checkOptions(what, options, optionKeys<LowRankOptions>()(['k']));
  const k = checkCount(what, 'k', options.k);
  if (adapter === null || typeof adapter !== 'object' || !Array.isArray((adapter as AdapterLike).modules)) throw new TypeError(`${what}: expected an adapter from injectShareLoRA or loadAdapter (with .modules); got ${String(adapter)}`);
  if (adapter.modules.length === 0) throw new RangeError(`${what}: the adapter adapts no module (was it unloaded or merged and unloaded?)`);
  const byRole = new Map<string, { layer: number; A: tf.Tensor; B: tf.Tensor }[]>();
  for (const m of adapter.modules) {
    const list = byRole.get(m.role) ?? [];
    list.push({ layer: m.layer, A: m.hook.A, B: m.hook.B });
    byRole.set(m.role, list);
  }
  const cache = new Map<tf.Tensor, Mat>();
  const out: ModuleSimilarity[] = [];
  for (const [role, list] of byRole) {
    list.sort((a, b) => a.layer - b.layer);
    const factors: Factors[] = [];
    for (const l of list) factors.push({ A: await readMat(`${what} ${role} layer ${l.layer} A`, l.A, cache), B: await readMat(`${what} ${role} layer ${l.layer} B`, l.B, cache) });
    out.push({ module: role, layers: list.map((l) => l.layer), ...similarityOfFactors(`${what} ${role}`, factors, k) });
  }
  return out;
}

/** The mean of the entries off the diagonal of a square matrix: a layer-by-layer matrix in one number. */
export function meanOffDiagonal(m: MatrixLike): number {
  const M = toMat('meanOffDiagonal', m);
  if (M.rows !== M.cols || M.rows < 2) throw new RangeError(`meanOffDiagonal: expected a square matrix of at least 2 × 2; got ${M.rows} × ${M.cols}`);
  let s = 0;
  for (let i = 0; i < M.rows; i++) for (let j = 0; j < M.cols; j++) if (i !== j) s += M.data[i * M.cols + j];
  return s / (M.rows * (M.rows - 1));
}
