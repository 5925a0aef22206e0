/**
 * Layer-similarity measures against closed forms worked by hand (below, next
 * to each case), their invariances, and the low-rank shortcuts against the
 * dense definitions on the same matrices.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  adapterSimilarity, cosineSimilarity, linearCKA, lowRankSimilarity, meanOffDiagonal, subspaceSimilarity,
  type MatrixLike,
} from '../../src/analysis/index.js';
import { injectShareLoRA } from '../../src/adapters/index.js';
import { loadModel } from '../../src/models/index.js';
import { Rng } from '../../src/util/rng.js';
import { FIXTURES, testBackend } from '../helpers.js';
import { join } from 'node:path';

function close(actual: number, expected: number, tol: number, what = ''): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what} ${actual} is not within ${tol} of ${expected}`);
}

const gaussian = (rng: Rng, rows: number, cols: number): number[][] => {
  const v = rng.normal(rows * cols, 1);
  return Array.from({ length: rows }, (_, i) => Array.from(v.subarray(i * cols, (i + 1) * cols)));
};
const mul = (a: MatrixLike, b: MatrixLike): number[][] => Array.from(a, (row) => Array.from({ length: b[0].length }, (_, j) => Array.from(row).reduce((s, v, k) => s + v * b[k][j], 0)));
const T = (a: MatrixLike): number[][] => Array.from({ length: a[0].length }, (_, j) => Array.from(a, (r) => r[j]));
/** a random orthogonal d × d matrix: product of Householder reflections */
function orthogonal(rng: Rng, d: number): number[][] {
  let q: number[][] = Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (i === j ? 1 : 0)));
  for (let h = 0; h < 3; h++) {
    const v = Array.from(rng.normal(d, 1));
    const n2 = v.reduce((s, x) => s + x * x, 0);
    q = mul(q, v.map((vi, i) => v.map((vj, j) => (i === j ? 1 : 0) - (2 * vi * vj) / n2)));
  }
  return q;
}

describe('subspaceSimilarity (φ of Hu et al. 2021, Sec. 7.2)', () => {
  const rng = new Rng(1);
  it('is 1 for the same row space, however the rows are mixed or scaled', () => {
    const A = gaussian(rng, 4, 12);
    close(subspaceSimilarity(A, A), 1, 1e-12);
    close(subspaceSimilarity(A, mul(gaussian(rng, 4, 4), A)), 1, 1e-10, 'A vs M·A');
    close(subspaceSimilarity(A, A.map((r) => r.map((v) => -3 * v))), 1, 1e-12);
  });
  it('is 0 for orthogonal subspaces', () => {
    // rows mix e1, e2 (x) and e3, e4 (y) of R^6
    const x = [[1, 2, 0, 0, 0, 0], [3, -1, 0, 0, 0, 0]], y = [[0, 0, 5, 1, 0, 0], [0, 0, 1, 1, 0, 0]];
    close(subspaceSimilarity(x, y), 0, 1e-15);
  });
  it('is the mean squared cosine of the principal angles (hand-worked cases)', () => {
    // one direction each, at angle θ: φ = cos²θ
    for (const th of [0.1, 0.7, 1.3]) close(subspaceSimilarity([[1, 0, 0]], [[Math.cos(th), Math.sin(th), 0]]), Math.cos(th) ** 2, 1e-14, `θ=${th}`);
    // span{e1, e2} vs span{e1, e3}: angles 0 and π/2 -> (1 + 0)/2
    close(subspaceSimilarity([[1, 0, 0], [0, 1, 0]], [[1, 0, 0], [0, 0, 1]]), 0.5, 1e-14);
    // span{e1} inside span{e1, e2}: normalised by min(i, j) = 1 -> 1
    close(subspaceSimilarity([[2, 0, 0]], [[1, 1, 0], [1, -1, 0]]), 1, 1e-14);
  });
  it('takes the top i / j singular directions, in order of singular value', () => {
    // x's top direction is e1 (σ = 3), its second e2 (σ = 1); y is e2
    const x = [[3, 0, 0], [0, 1, 0]], y = [[0, 2, 0]];
    close(subspaceSimilarity(x, y, { i: 1 }), 0, 1e-15);
    close(subspaceSimilarity(x, y, { i: 2 }), 1, 1e-14);
  });
  it('resolves a direction whose singular value is 1e-9 of the largest (exact float64 SVD)', () => {
    const q = orthogonal(rng, 5);
    const x = mul([[1, 0, 0, 0, 0], [0, 1e-9, 0, 0, 0]], q);   // rows: e1·Q and 1e-9·e2·Q
    close(subspaceSimilarity(x, [q[1]], { i: 2 }), 1, 1e-12);
    close(subspaceSimilarity(x, [q[1]], { i: 1 }), 0, 1e-12);
  });
  it('is unchanged by a rotation of the space both live in', () => {
    const x = gaussian(rng, 3, 9), y = gaussian(rng, 4, 9), q = orthogonal(rng, 9);
    const before = subspaceSimilarity(x, y);
    assert.ok(before > 0.05 && before < 0.95, `a generic pair: ${before}`);
    close(subspaceSimilarity(mul(x, q), mul(y, q)), before, 1e-12);
    close(subspaceSimilarity(y, x), before, 1e-12, 'symmetric');
  });
  it('explains bad input', () => {
    assert.throws(() => subspaceSimilarity([[1, 0]], [[1, 0, 0]]), /x has 2 columns and y has 3/);
    assert.throws(() => subspaceSimilarity([[0, 0, 0]], [[1, 0, 0]]), /x is all zeros/);
    assert.throws(() => subspaceSimilarity([[1, 0, 0], [2, 0, 0]], [[1, 0, 0]], { i: 2 }), /x has rank 1 .* fewer than the 2 directions/);
    assert.throws(() => subspaceSimilarity([[1, 0]], [[1, 0]], { k: 1 } as never), /option "k" is not an option; did you mean "i"/);
    assert.throws(() => subspaceSimilarity([[1, 0]], [[1, 0]], { i: 0.5 }), /"i" must be a positive integer/);
    assert.throws(() => subspaceSimilarity([[1, NaN]], [[1, 0]]), /entry \[0\]\[1\] is NaN/);
    assert.throws(() => subspaceSimilarity([[1, 0], [1]], [[1, 0]]), /row 1 has 1 entries, row 0 has 2/);
  });
});

describe('cosineSimilarity', () => {
  it('matches the hand-computed value and its sign', () => {
    // ⟨[[1,2],[3,4]], [[4,3],[2,1]]⟩ = 4+6+6+4 = 20; both norms √30 -> 20/30
    close(cosineSimilarity([[1, 2], [3, 4]], [[4, 3], [2, 1]]), 2 / 3, 1e-15);
    close(cosineSimilarity([[1, 2], [3, 4]], [[-2, -4], [-6, -8]]), -1, 1e-15);
    close(cosineSimilarity([[1, 0]], [[0, 7]]), 0, 0);
  });
  it('explains bad input', () => {
    assert.throws(() => cosineSimilarity([[1, 2]], [[1], [2]]), /x is 1 × 2 and y is 2 × 1/);
    assert.throws(() => cosineSimilarity([[0, 0]], [[1, 2]]), /x is all zeros/);
  });
});

describe('linearCKA', () => {
  it('is the squared correlation for one feature: [1,2,3] vs [1,0,2] -> 1/4', () => {
    // centred: [−1, 0, 1] and [0, −1, 1]; r = 1/(√2·√2) = 1/2
    close(linearCKA([[1], [2], [3]], [[1], [0], [2]]), 0.25, 1e-15);
  });
  it('matches a two-feature case worked by hand: 1/√2', () => {
    // X (centred already): X̃ᵀX̃ = diag(2, 2), ‖·‖_F = 2√2; Y = [1, 0, −1, 0]ᵀ: ỸᵀỸ = 2, ỸᵀX̃ = [2, 0], ‖·‖² = 4 -> 4 / (2√2 · 2)
    close(linearCKA([[1, 0], [0, 1], [-1, 0], [0, -1]], [[1], [0], [-1], [0]]), 1 / Math.SQRT2, 1e-15);
  });
  it('is 1 for a rotated, scaled and shifted copy, and symmetric', () => {
    const rng = new Rng(2);
    const x = gaussian(rng, 20, 4), q = orthogonal(rng, 4);
    close(linearCKA(x, mul(x, q).map((r) => r.map((v) => 2.5 * v + 7))), 1, 1e-12);
    const y = gaussian(rng, 20, 3);
    close(linearCKA(x, y), linearCKA(y, x), 1e-14);
  });
  it('explains bad input', () => {
    assert.throws(() => linearCKA([[1], [2]], [[1], [2], [3]]), /x has 2 rows and y has 3/);
    assert.throws(() => linearCKA([[1], [1]], [[1], [2]]), /x has no variance/);
  });
});

describe('lowRankSimilarity: A_i, B_i and ΔW_i = B_i·A_i across layers', () => {
  const rng = new Rng(3);
  const L = 3, r = 3, dIn = 7, dOut = 5;
  const layers = Array.from({ length: L }, () => ({ A: gaussian(rng, r, dIn), B: gaussian(rng, dOut, r) }));
  const W = layers.map(({ A, B }) => mul(B, A));
  it('equals the dense definitions on the same matrices (ΔW formed explicitly)', () => {
    const s = lowRankSimilarity(layers), s2 = lowRankSimilarity(layers, { k: 2 });
    for (let i = 0; i < L; i++) for (let j = 0; j < L; j++) {
      const at = `layers ${i}, ${j}`;
      close(s.A.subspace[i][j], subspaceSimilarity(layers[i].A, layers[j].A), 1e-12, `A φ ${at}`);
      close(s.A.cosine[i][j], cosineSimilarity(layers[i].A, layers[j].A), 1e-12, `A cos ${at}`);
      close(s.A.cka[i][j], linearCKA(T(layers[i].A), T(layers[j].A)), 1e-12, `A CKA ${at}`);
      close(s.B.subspace[i][j], subspaceSimilarity(T(layers[i].B), T(layers[j].B)), 1e-12, `B φ ${at}`);
      close(s.B.cosine[i][j], cosineSimilarity(layers[i].B, layers[j].B), 1e-12, `B cos ${at}`);
      close(s.B.cka[i][j], linearCKA(layers[i].B, layers[j].B), 1e-12, `B CKA ${at}`);
      close(s.deltaW.subspace[i][j], subspaceSimilarity(T(W[i]), T(W[j])), 1e-12, `ΔW φ ${at}`);
      close(s2.deltaW.subspace[i][j], subspaceSimilarity(T(W[i]), T(W[j]), { i: 2, j: 2 }), 1e-12, `ΔW φ k=2 ${at}`);
      close(s.deltaW.cosine[i][j], cosineSimilarity(W[i], W[j]), 1e-12, `ΔW cos ${at}`);
      close(s.deltaW.cka[i][j], linearCKA(W[i], W[j]), 1e-12, `ΔW CKA ${at}`);
    }
    // with all r directions, ΔW's column space is B's (B has full rank r)
    for (let i = 0; i < L; i++) for (let j = 0; j < L; j++) close(s.deltaW.subspace[i][j], s.B.subspace[i][j], 1e-12);
    for (const m of [s.A, s.B, s.deltaW]) for (const k of ['subspace', 'cosine', 'cka'] as const) for (let i = 0; i < L; i++) close(m[k][i][i], 1, 1e-12, `${k} diagonal`);
  });
  it('sees through the gauge B·A = (B·Q⁻¹)·(Q·A) in φ, CKA and ΔW, but not in the cosine of A', () => {
    const q = orthogonal(rng, r);
    const moved = layers.map(({ A, B }, i) => (i === 1 ? { A: mul(q, A), B: mul(B, T(q)) } : { A, B }));
    const s = lowRankSimilarity(layers), t = lowRankSimilarity(moved);
    for (const [m, k] of [['A', 'subspace'], ['A', 'cka'], ['B', 'subspace'], ['B', 'cka'], ['deltaW', 'subspace'], ['deltaW', 'cosine'], ['deltaW', 'cka']] as const) {
      close(t[m][k][0][1], s[m][k][0][1], 1e-12, `${m} ${k}`);
    }
    assert.ok(Math.abs(t.A.cosine[0][1] - s.A.cosine[0][1]) > 1e-3, 'the cosine of A depends on the gauge');
  });
  it('explains bad input', () => {
    assert.throws(() => lowRankSimilarity([]), /non-empty array of \{ A, B \}/);
    assert.throws(() => lowRankSimilarity([layers[0], { A: layers[1].A, B: gaussian(rng, dOut + 1, r) }]), /layer 1 maps 7 → 6 features, layer 0 7 → 5/);
    assert.throws(() => lowRankSimilarity([{ A: layers[0].A, B: gaussian(rng, dOut, r + 1) }]), /A with 3 rows but B with 4 columns/);
    assert.throws(() => lowRankSimilarity([{ ...layers[0], b: 1 } as never]), /option "b" is not an option; did you mean "B"/);
    assert.throws(() => lowRankSimilarity(layers, { k: 4 }), /rank 3 .* fewer than the 4 directions/);
    assert.throws(() => lowRankSimilarity([layers[0], { A: layers[1].A, B: layers[1].B.map((row) => row.map(() => 0)) }]), /layer 1 B is all zeros/);
  });
});

describe('adapterSimilarity on injected adapters', () => {
  it('reads each target module of a LoRA adapter as its factors give it', async () => {
    await testBackend();
    const model = await loadModel(join(FIXTURES, 'gpt2', 'model'));
    // init 'random': B nonzero without training
    const adapter = injectShareLoRA(model, { r: 4, alpha: 8, targets: ['c_attn', 'c_fc'], share: 'none', init: 'random', seed: 5 });
    try {
      const sims = await adapterSimilarity(adapter);
      assert.deepEqual(sims.map((m) => [m.module, m.layers]), [['attn.c_attn', [0, 1, 2]], ['mlp.c_fc', [0, 1, 2]]]);
      for (const sim of sims) {
        const mods = adapter.modules.filter((m) => m.role === sim.module).sort((a, b) => a.layer - b.layer);
        const ref = lowRankSimilarity(mods.map((m) => ({ A: m.hook.A.arraySync() as number[][], B: m.hook.B.arraySync() as number[][] })));
        assert.deepEqual({ A: sim.A, B: sim.B, deltaW: sim.deltaW }, ref);
        assert.ok(meanOffDiagonal(sim.A.subspace) < 0.5, 'independent random A of rank 4 in R^64 are far from alike');
      }
    } finally {
      adapter.unload();
    }
    const shareA = injectShareLoRA(model, { r: 4, targets: ['c_attn'], share: 'A', init: 'random' });
    try {
      const [s] = await adapterSimilarity(shareA);
      for (const k of ['subspace', 'cosine', 'cka'] as const) for (const row of s.A[k]) for (const v of row) close(v, 1, 1e-12, `shared A ${k}`);
      // one A for all layers: ΔW_i = B_i·A has B_i's column space
      s.deltaW.subspace.forEach((row, i) => row.forEach((v, j) => close(v, s.B.subspace[i][j], 1e-12, 'ΔW φ = B φ')));
    } finally {
      shareA.unload();
    }
    const untrained = injectShareLoRA(model, { r: 4, targets: ['c_attn'], share: 'none' });
    try {
      await assert.rejects(adapterSimilarity(untrained), /layer 0 B is all zeros.*compare it after training/);
      await assert.rejects(adapterSimilarity(untrained, { rank: 2 } as never), /option "rank" is not an option/);
    } finally {
      untrained.unload();
      model.dispose();
    }
    await assert.rejects(adapterSimilarity(untrained), /adapts no module/);
  });
});

describe('meanOffDiagonal', () => {
  it('averages the entries off the diagonal', () => {
    close(meanOffDiagonal([[1, 0.2, 0.4], [0.2, 1, 0.6], [0.4, 0.6, 1]]), 0.4, 1e-15);
    assert.throws(() => meanOffDiagonal([[1, 2]]), /square matrix of at least 2 × 2; got 1 × 2/);
  });
});
