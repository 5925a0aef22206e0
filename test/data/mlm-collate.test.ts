/** Dynamic masking: proportions within statistical bounds, special tokens and padding never touched, seeded. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { collateMaskedLM, IGNORE_INDEX } from '../../src/data/collate.js';

const V = 1000, BOS = 0, PAD = 1, EOS = 2, UNK = 3, MASK = 999;
const SPECIAL = [BOS, PAD, EOS, UNK, MASK];
const opts = { maskId: MASK, vocabSize: V, specialIds: SPECIAL, padId: PAD, seed: 7 };

/** rows of random ordinary ids framed by <s> … </s>, with a </s> document separator inside, ragged lengths */
function rows(n: number, seed: number): number[][] {
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  return Array.from({ length: n }, () => {
    const len = 20 + Math.floor(rnd() * 100);
    const r = [BOS, ...Array.from({ length: len }, () => 4 + Math.floor(rnd() * (V - 5))), EOS];
    r.splice(1 + Math.floor(len / 2), 0, EOS);
    return r;
  });
}

describe('collateMaskedLM', () => {
  it('predicts 15% of ordinary tokens: 80% <mask>, 10% random, 10% unchanged (bounded at 5 sigma)', () => {
    const input = rows(2000, 1);
    const { inputIds, attentionMask, labels } = collateMaskedLM(input, opts);
    let ordinary = 0, picked = 0, masked = 0, random = 0, kept = 0;
    input.forEach((row, b) => row.forEach((id, t) => {
      if (SPECIAL.includes(id)) return;
      ordinary++;
      const y = (labels as number[][])[b][t];
      if (y === IGNORE_INDEX) { assert.equal(inputIds[b][t], id); return; }
      picked++;
      assert.equal(y, id, 'the label is the original token');
      const x = inputIds[b][t];
      if (x === MASK) masked++;
      else if (x === id) kept++;
      else { random++; assert.ok(!SPECIAL.includes(x), `random replacement ${x} is special`); }
      assert.equal(attentionMask[b][t], 1);
    }));
    const within = (k: number, n: number, p: number, what: string) => {
      const sd = Math.sqrt(n * p * (1 - p));
      assert.ok(Math.abs(k - n * p) < 5 * sd, `${what}: ${k} of ${n}, expected ${(n * p).toFixed(0)} ± ${(5 * sd).toFixed(0)}`);
    };
    assert.ok(ordinary > 100_000);
    within(picked, ordinary, 0.15, 'predicted');
    within(masked, picked, 0.8, '<mask>');
    // a random draw equals the original token with probability 1/995: counted as kept
    within(random, picked, 0.1 * (1 - 1 / (V - SPECIAL.length)), 'random');
    within(kept, picked, 0.1 + 0.1 / (V - SPECIAL.length), 'unchanged');
  });

  it('never selects special or padding positions; padding gets mask 0 and label -100', () => {
    const input = rows(300, 2);
    const { inputIds, attentionMask, labels } = collateMaskedLM(input, { ...opts, probability: 0.9, padToMultipleOf: 8 });
    const T = inputIds[0].length;
    assert.equal(T % 8, 0);
    input.forEach((row, b) => {
      for (let t = 0; t < T; t++) {
        const y = (labels as number[][])[b][t];
        if (t >= row.length) {
          assert.equal(inputIds[b][t], PAD); assert.equal(attentionMask[b][t], 0); assert.equal(y, IGNORE_INDEX);
        } else if (SPECIAL.includes(row[t])) {
          assert.equal(inputIds[b][t], row[t], `special token at ${b},${t} was changed`);
          assert.equal(y, IGNORE_INDEX);
        }
      }
    });
  });

  it('is a function of the seed', () => {
    const input = rows(50, 3);
    assert.deepEqual(collateMaskedLM(input, opts), collateMaskedLM(input, opts));
    assert.notDeepEqual(collateMaskedLM(input, opts).inputIds, collateMaskedLM(input, { ...opts, seed: 8 }).inputIds);
  });

  it('checks its options and ids', () => {
    assert.throws(() => collateMaskedLM([[0, 5, 2]], { ...opts, mlmProbability: 0.2 } as never), /collateMaskedLM: option "mlmProbability" is not an option; did you mean "probability"\?/);
    assert.throws(() => collateMaskedLM([[0, 5, 2]], { ...opts, probability: 1.5 }), /probability must be in \[0, 1\], got 1.5/);
    assert.throws(() => collateMaskedLM([[0, 5000, 2]], opts), /row 0 position 1 holds 5000, not an id in \[0, 1000\)/);
    assert.throws(() => collateMaskedLM([[0, 5, 2]], { ...opts, maskId: 1000 }), /maskId must be an id in \[0, 1000\)/);
    assert.throws(() => collateMaskedLM([], opts), /empty batch/);
    assert.throws(() => collateMaskedLM([[0, 5, 2]], { ...opts, headRows: 1 as unknown as boolean }), /headRows must be true or false, got 1/);
  });

  it('headRows: every labelled position once, then distinct unlabelled ones, to a count set by the shape alone', () => {
    const counts = new Set<number>();
    for (const seed of [1, 2, 3]) {
      const b = collateMaskedLM(rows(16, seed), { ...opts, seed, padTo: 128, headRows: true });
      const T = b.inputIds[0]!.length;
      const rowsAt = Array.from(b.headRows as Int32Array);
      counts.add(rowsAt.length);
      const labelled = (b.labels as number[][]).flatMap((r, i) => r.flatMap((y, t) => (y === IGNORE_INDEX ? [] : [i * T + t])));
      assert.deepEqual(rowsAt.slice(0, labelled.length), labelled);
      assert.equal(new Set(rowsAt).size, rowsAt.length);
      assert.ok(rowsAt.slice(labelled.length).every((p) => (b.labels as number[][])[Math.floor(p / T)]![p % T] === IGNORE_INDEX));
    }
    // 16 × 128 positions at 15%: mean 307.2 + 6σ (97.0) = 404.2, up to a multiple of 64
    assert.deepEqual([...counts], [448]);
    assert.equal(collateMaskedLM(rows(2, 1), opts).headRows, undefined);
  });
});
