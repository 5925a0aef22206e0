/**
 * The statistics helpers against closed forms, printed tables and R's own
 * documented examples. R values are those its help pages print (R 4.x).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as aq from 'arquero';
import {
  bootstrapCI, compare, meanCI, normalCdf, normalQuantile, pairedTTest, quantile, summarize, tCdf, tPdf, tQuantile, wilcoxonSignedRank,
} from '../../src/analysis/index.js';

function close(actual: number | null | undefined, expected: number, tol: number, what = ''): void {
  assert.ok(typeof actual === 'number' && Math.abs(actual - expected) <= tol, `${what} ${actual} is not within ${tol} of ${expected}`);
}

// Student's "sleep" data (Cushny & Peebles 1905, as analysed in Student 1908), R's `sleep`:
// extra hours of sleep with drug 1 and drug 2 for the same ten patients.
const SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
const SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];

describe('Student t distribution', () => {
  it('matches the closed forms for 1, 2 and 4 degrees of freedom to 1e-12', () => {
    for (const p of [0.6, 0.9, 0.95, 0.975, 0.995, 0.9995]) {
      close(tQuantile(p, 1), Math.tan(Math.PI * (p - 0.5)), 1e-12 * Math.tan(Math.PI * (p - 0.5)), `df=1 p=${p}`);
      close(tQuantile(p, 2), (2 * p - 1) / Math.sqrt(2 * p * (1 - p)), 1e-12, `df=2 p=${p}`);
      // ν = 4 (Hill 1970): α = 4p(1−p), q = cos(acos(√α)/3)/√α, t = 2√(q − 1)
      const a = 4 * p * (1 - p);
      const q = Math.cos(Math.acos(Math.sqrt(a)) / 3) / Math.sqrt(a);
      close(tQuantile(p, 4), 2 * Math.sqrt(q - 1), 1e-11, `df=4 p=${p}`);
    }
    for (const t of [-30, -2, -0.5, 0, 0.3, 1, 12.7]) {
      close(tCdf(t, 1), 0.5 + Math.atan(t) / Math.PI, 1e-14, `cdf df=1 t=${t}`);
      close(tCdf(t, 2), 0.5 + t / (2 * Math.sqrt(2 + t * t)), 1e-14, `cdf df=2 t=${t}`);
    }
  });

  it('gives the printed table of two-sided 95% critical values', () => {
    // Any t table (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2), 3 decimals; R's qt(0.975, df) agrees.
    const table: [number, number][] = [[1, 12.706], [2, 4.303], [3, 3.182], [4, 2.776], [5, 2.571], [6, 2.447], [9, 2.262], [10, 2.228], [20, 2.086], [30, 2.042], [100, 1.984]];
    for (const [df, t] of table) close(tQuantile(0.975, df), t, 0.0005, `df=${df}`);
    close(tQuantile(0.995, 5), 4.032, 0.0005, '99% df=5');
    close(tQuantile(0.95, 3), 2.353, 0.0005, '90% df=3');
    close(tQuantile(0.025, 3), -3.182, 0.0005, 'lower tail');
    close(tQuantile(0.975, 1e6), 1.959966, 1e-6, 'df → ∞ tends to the normal');
  });

  it('handles fractional degrees of freedom (Welch): the cdf equals the integral of the density', () => {
    // Simpson's rule on tPdf, which shares nothing with the incomplete-beta route tCdf takes.
    for (const df of [2.5, 7.5]) {
      for (const t of [0.4, 1.3, 3]) {
        const n = 2000;
        const h = t / n;
        let sum = tPdf(0, df) + tPdf(t, df);
        for (let i = 1; i < n; i++) sum += (i % 2 ? 4 : 2) * tPdf(i * h, df);
        close(tCdf(t, df), 0.5 + (sum * h) / 3, 1e-12, `df=${df} t=${t}`);
      }
    }
  });

  it('round-trips quantile and cdf', () => {
    for (const df of [1, 2, 3, 7.5, 30, 500]) for (const p of [0.001, 0.2, 0.5, 0.8, 0.999]) close(tCdf(tQuantile(p, df), df), p, 1e-12, `df=${df} p=${p}`);
  });

  it('rejects impossible arguments', () => {
    assert.throws(() => tQuantile(1.2, 3), /p must be a probability/);
    assert.throws(() => tQuantile(0.5, 0), /df must be positive/);
  });
});

describe('normal distribution', () => {
  it('matches R (qnorm, pnorm)', () => {
    close(normalQuantile(0.975), 1.959963984540054, 1e-14);
    close(normalQuantile(0.995), 2.575829303548901, 1e-14);
    close(normalQuantile(1e-10), -6.361340902404056, 1e-12);
    close(normalCdf(-1.96), 0.024997895148220435, 1e-16);
    close(normalCdf(-10) / 7.61985302416047e-24, 1, 1e-12, 'far tail, relative');
  });
});

describe('meanCI', () => {
  it('is R\'s t.test(x)$conf.int on the sleep differences', () => {
    const d = SLEEP_1.map((v, i) => v - SLEEP_2[i]!);
    const ci = meanCI(d);
    close(ci.mean, -1.58, 1e-12);
    // R: t.test(extra[group==1] - extra[group==2]) → 95 percent confidence interval: -2.4598858 -0.7001142
    close(ci.low, -2.4598858, 5e-8);
    close(ci.high, -0.7001142, 5e-8);
    assert.equal(ci.df, 9);
  });

  it('uses t with n − 1 degrees of freedom, not 1.96: three seeds give a wide interval', () => {
    const ci = meanCI([1, 2, 3]);
    close(ci.high! - ci.mean, 4.302652729749464 * (1 / Math.sqrt(3)), 1e-12);
  });

  it('has no interval for one value, and refuses non-finite values and unknown options', () => {
    assert.deepEqual(meanCI([0.5]), { n: 1, mean: 0.5, sd: null, se: null, df: null, level: 0.95, low: null, high: null });
    assert.throws(() => meanCI([1, NaN]), /value 1 is NaN/);
    assert.throws(() => meanCI([1, 2], { levle: 0.9 } as never), /meanCI: option "levle" is not an option; did you mean "level"\?/);
    assert.throws(() => meanCI([1, 2], { level: 95 }), /level must be in \(0, 1\)/);
  });
});

describe('pairedTTest', () => {
  it('reproduces R\'s ?t.test sleep example', () => {
    // R: with(sleep, t.test(extra[group == 1], extra[group == 2], paired = TRUE))
    // t = -4.0621, df = 9, p-value = 0.002833; 95% CI -2.4598858 -0.7001142; mean difference -1.58
    const r = pairedTTest(SLEEP_1, SLEEP_2);
    close(r.t, -4.0621, 5e-5);
    assert.equal(r.df, 9);
    close(r.p, 0.002833, 5e-7);
    close(r.low, -2.4598858, 5e-8);
    close(r.high, -0.7001142, 5e-8);
    close(r.meanDiff, -1.58, 1e-12);
  });

  it('one-sided alternatives halve the p-value on the observed side and give half-infinite intervals', () => {
    const less = pairedTTest(SLEEP_1, SLEEP_2, { alternative: 'less' });
    close(less.p, pairedTTest(SLEEP_1, SLEEP_2).p / 2, 1e-15);
    assert.equal(less.low, -Infinity);
    const greater = pairedTTest(SLEEP_1, SLEEP_2, { alternative: 'greater' });
    close(greater.p, 1 - less.p, 1e-15);
    assert.equal(greater.high, Infinity);
  });

  it('needs pairs and two of them', () => {
    assert.throws(() => pairedTTest([1, 2], [1]), /must pair up; got 2 and 1/);
    assert.throws(() => pairedTTest([1], [2]), /at least 2 pairs/);
  });
});

describe('wilcoxonSignedRank', () => {
  it('reproduces R\'s ?wilcox.test depression example exactly', () => {
    // Hollander & Wolfe (1973), p. 29: Hamilton depression scale before (x) and after (y) treatment.
    // R: wilcox.test(x, y, paired = TRUE, alternative = "greater") → V = 40, p-value = 0.01953
    const x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30];
    const y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29];
    const r = wilcoxonSignedRank(x, y, { alternative: 'greater' });
    assert.equal(r.V, 40);
    assert.equal(r.method, 'exact');
    assert.equal(r.p, 10 / 512);
    assert.equal(wilcoxonSignedRank(x, y).p, 20 / 512);
  });

  it('uses R\'s normal approximation with ties and zeros (the sleep data)', () => {
    // R: with(sleep, wilcox.test(extra[group == 1], extra[group == 2], paired = TRUE))
    // V = 0, p-value = 0.009091 (warnings: cannot compute exact p-value with ties / with zeroes)
    const r = wilcoxonSignedRank(SLEEP_1, SLEEP_2);
    assert.equal(r.V, 0);
    assert.equal(r.zeros, 1);
    assert.equal(r.n, 9);
    assert.equal(r.method, 'normal');
    close(r.p, 0.009091, 5e-7);
  });

  it('cannot go below 2/2^n with n pairs: three seeds that all agree give p = 0.25', () => {
    assert.equal(wilcoxonSignedRank([2, 3, 4], [1, 1, 1]).p, 0.25);
    assert.equal(wilcoxonSignedRank([2, 3, 4, 5, 6], [1, 1, 1, 1, 1]).p, 0.0625);
  });
});

describe('quantile and bootstrapCI', () => {
  it('quantile is R\'s type 7', () => {
    assert.equal(quantile([1, 2, 3, 4], 0.25), 1.75);
    close(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), 9.1, 1e-12);
    assert.equal(quantile([5], 0.3), 5);
  });

  it('is reproducible from its seed and differs across seeds', () => {
    const data = [0.2, 0.5, 0.9, 0.4, 0.7, 0.1, 0.8];
    const m = (s: number[]) => s.reduce((a, b) => a + b, 0) / s.length;
    const a = bootstrapCI(data, m, { seed: 1 });
    assert.deepEqual(bootstrapCI(data, m, { seed: 1 }), a);
    assert.notDeepEqual(bootstrapCI(data, m, { seed: 2 }), a);
    close(a.estimate, m(data), 1e-15);
    assert.ok(a.low < a.estimate && a.estimate < a.high);
  });

  it('for the mean of a large sample, agrees with the t interval', () => {
    // 400 values spread evenly over [0, 1): the t interval half-width is 1.966 · sd/√n ≈ 0.0284.
    const data = Array.from({ length: 400 }, (_, i) => (i + 0.5) / 400);
    const m = (s: number[]) => s.reduce((a, b) => a + b, 0) / s.length;
    const b = bootstrapCI(data, m, { resamples: 4000 });
    const t = meanCI(data);
    close(b.high - b.low, t.high! - t.low!, 0.1 * (t.high! - t.low!), 'interval width');
    close((b.high + b.low) / 2, t.mean, 0.003, 'interval centre');
  });

  it('checks its options', () => {
    assert.throws(() => bootstrapCI([1, 2], () => 1, { resample: 10 } as never), /bootstrapCI: option "resample" is not an option; did you mean "resamples"\?/);
    assert.throws(() => bootstrapCI([1, 2], () => 1, { resamples: 10 }), /resamples must be an integer ≥ 100/);
    assert.throws(() => bootstrapCI([], () => 1), /non-empty/);
  });
});

describe('summarize and compare', () => {
  // Three seeds of three variants (binary fractions, so differences are exact): ShareA beats LoRA
  // on every seed by 1/16, 2/16, 3/16; ShareB is listed out of seed order; AB is LoRA + 1/16 throughout.
  const rows = [
    { share: 'none', seed: 0, acc: 0.75 }, { share: 'none', seed: 1, acc: 0.8125 }, { share: 'none', seed: 2, acc: 0.6875 },
    { share: 'A', seed: 0, acc: 0.8125 }, { share: 'A', seed: 1, acc: 0.9375 }, { share: 'A', seed: 2, acc: 0.875 },
    { share: 'B', seed: 2, acc: 0.70 }, { share: 'B', seed: 0, acc: 0.85 }, { share: 'B', seed: 1, acc: 0.80 },
    { share: 'AB', seed: 0, acc: 0.8125 }, { share: 'AB', seed: 1, acc: 0.875 }, { share: 'AB', seed: 2, acc: 0.75 },
  ];
  const t = aq.from(rows);

  it('summarize: n, mean, sd and the t interval per group, as meanCI', () => {
    const s = summarize(t, { by: 'share', value: 'acc' }).objects() as Record<string, number>[];
    assert.deepEqual(s.map((r) => r.share), ['none', 'A', 'B', 'AB']);
    const ref = meanCI([0.70, 0.85, 0.80]);
    assert.deepEqual(s[2], { share: 'B', n: 3, mean: ref.mean, sd: ref.sd, ci_low: ref.low, ci_high: ref.high });
  });

  it('summarize: one run has no interval; bad input is refused by name', () => {
    const s = summarize(aq.from([{ v: 'x', a: 1 }]), { by: ['v'], value: 'a' }).objects()[0] as Record<string, unknown>;
    assert.deepEqual(s, { v: 'x', n: 1, mean: 1, sd: null, ci_low: null, ci_high: null });
    assert.throws(() => summarize(t, { by: 'share', value: 'accuracy' }), /no column "accuracy"; the columns are share, seed, acc/);
    assert.throws(() => summarize(t, { by: 'share', value: 'acc', pm: 2 } as never), /summarize: option "pm" is not an option/);
    assert.throws(() => summarize(aq.from([{ v: 'x', a: NaN }]), { by: 'v', value: 'a' }), /"a" is NaN in row 0/);
  });

  it('compare: paired differences per variant, matched by seed whatever the row order', () => {
    const c = compare(t, { by: 'share', baseline: 'none', pairBy: 'seed', value: 'acc' }).objects() as Record<string, number | null>[];
    assert.deepEqual(c.map((r) => r.share), ['A', 'B', 'AB']);
    const a = c[0]!;
    assert.equal(a.n, 3);
    assert.equal(a.mean_diff, 0.125);
    assert.equal(a.sd_diff, 0.0625);
    // t = 0.125 / (0.0625/√3) = 2√3 on 2 df; the closed form for 2 df gives p = 1 − t/√(2 + t²) = 1 − √(6/7)
    close(a.p, 1 - Math.sqrt(6 / 7), 1e-14);
    close(a.ci_low, 0.125 - 4.302652729749464 * 0.0625 / Math.sqrt(3), 1e-12);
    assert.equal(a.p_wilcoxon, 0.25, 'three pairs, all one way: the smallest exact two-sided p there is');
    const b = c[1]!;
    const ref = pairedTTest([0.85, 0.80, 0.70], [0.75, 0.8125, 0.6875]);
    close(b.mean_diff, ref.meanDiff, 1e-15);
    close(b.ci_low, ref.low, 1e-12);
    close(b.ci_high, ref.high, 1e-12);
    close(b.p, ref.p, 1e-15);
    const ab = c[2]!;
    assert.equal(ab.sd_diff, 0);
    assert.equal(ab.p, null, 'identical differences have no t statistic');
  });

  it('compare: refuses ambiguous pairs, a missing baseline and unknown options', () => {
    const dup = aq.from([...rows, { share: 'A', seed: 0, acc: 0.9 }]);
    assert.throws(() => compare(dup, { by: 'share', baseline: 'none', pairBy: 'seed', value: 'acc' }), /share = "A" has two rows for seed = \[0\]/);
    assert.throws(() => compare(t, { by: 'share', baseline: 'ABC', pairBy: 'seed', value: 'acc' }), /no rows with share = "ABC"/);
    assert.throws(() => compare(t, { by: 'share', baseline: 'none', pair: 'seed', value: 'acc' } as never), /compare: option "pair" is not an option; did you mean "pairBy"\?/);
  });
});
