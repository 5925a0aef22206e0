/**
 * Text-generation metrics: corpus BLEU-4 and ROUGE-L.
 *
 * - `corpusBleu` follows sacrebleu's `corpus_bleu` (tokenizer 13a, n-gram
 *   counts clipped by the largest count in any reference and summed over the
 *   whole corpus, brevity penalty against the closest reference length with
 *   ties going to the shorter one); the default `smooth: 'exp'` is
 *   sacrebleu's. With `smooth: 'none'` it also equals NLTK's `corpus_bleu`
 *   on the same tokens whenever every hypothesis has at least maxOrder
 *   tokens (NLTK counts a hypothesis with no n-grams as having one).
 *   Scores are on sacrebleu's 0–100 scale.
 * - `rougeL` follows Google's `rouge-score` (`RougeScorer(['rougeL'])`,
 *   no stemming): lower-cased alphanumeric tokens, LCS precision and recall,
 *   F-measure; several references take the best F (`score_multi`); the
 *   corpus score is the mean over sentences.
 *
 * @example
 *   corpusBleu(['the cat sat on the mat'], [['the cat sat on a mat']]).score
 *   rougeL(['the cat sat'], ['the cat is sitting']).f
 */

export interface BleuOptions {
  /** n-gram orders (default 4) */
  maxOrder?: number;
  /**
   * Zero n-gram matches at some order:
   * - 'exp' (sacrebleu's default): precision 100 / (2^k · total) for the k-th such order;
   * - 'floor': precision 100 · floorValue / total;
   * - 'none' (NLTK's default): the score is 0.
   */
  smooth?: 'exp' | 'floor' | 'none';
  /** for smooth 'floor' (sacrebleu's default 0.1) */
  floorValue?: number;
  /** how strings become tokens: '13a' (sacrebleu's default) or 'whitespace' (text tokenised already, as NLTK takes it) */
  tokenize?: '13a' | 'whitespace';
  /** lower-case before tokenising (sacrebleu's -lc); default false */
  lowercase?: boolean;
}

export interface BleuResult {
  /** BLEU, 0–100 as sacrebleu prints it */
  score: number;
  /** modified n-gram precisions, 0–100 */
  precisions: number[];
  /** brevity penalty */
  bp: number;
  /** hypothesis length / reference length */
  ratio: number;
  sysLen: number;
  refLen: number;
  /** clipped matches and hypothesis n-grams per order */
  counts: number[];
  totals: number[];
}

/**
 * sacrebleu's 13a tokenizer (mteval-v13a): unescape a few entities, split off
 * punctuation, and periods/commas except between digits.
 */
export function tokenize13a(line: string): string[] {
  line = line.replace(/<skipped>/g, '').replace(/-\n/g, '').replace(/\n/g, ' ');
  if (line.includes('&')) line = line.replace(/&quot;/g, '"').replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
  line = ` ${line} `;
  line = line.replace(/([{-~[-` -&(-+:-@/])/g, ' $1 ');
  line = line.replace(/([^0-9])([.,])/g, '$1 $2 ');
  line = line.replace(/([.,])([^0-9])/g, ' $1 $2');
  line = line.replace(/([0-9])(-)/g, '$1 $2 ');
  return line.split(/\s+/).filter((t) => t !== '');
}

function toTokens(x: string, o: BleuOptions): string[] {
  if (typeof x !== 'string') throw new TypeError(`corpusBleu: expected strings, got ${typeof x}; join pre-tokenised text with spaces and pass tokenize: 'whitespace'`);
  const s = o.lowercase ? x.toLowerCase() : x;
  return (o.tokenize ?? '13a') === '13a' ? tokenize13a(s) : s.split(/\s+/).filter((t) => t !== '');
}

function ngramCounts(tokens: string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const k = tokens.slice(i, i + n).join('\u0001');
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

/**
 * Corpus BLEU. `references[i]` holds the reference of hypothesis i, or an
 * array of its references. Strings are tokenised with 13a (or split on
 * whitespace with `tokenize: 'whitespace'`, for text tokenised already).
 */
export function corpusBleu(hypotheses: string[], references: Array<string | string[]>, opts: BleuOptions = {}): BleuResult {
  const N = opts.maxOrder ?? 4;
  if (!Number.isInteger(N) || N < 1) throw new RangeError(`corpusBleu: maxOrder must be a positive integer, got ${opts.maxOrder}`);
  if (hypotheses.length !== references.length) {
    throw new RangeError(`corpusBleu: ${hypotheses.length} hypotheses but ${references.length} reference entries; pass one entry (a string or an array of strings) per hypothesis`);
  }
  const counts = new Array<number>(N).fill(0);
  const totals = new Array<number>(N).fill(0);
  let sysLen = 0, refLen = 0;
  hypotheses.forEach((h, i) => {
    const hyp = toTokens(h, opts);
    const entry = references[i]!;
    const refToks = (typeof entry === 'string' ? [entry] : entry).map((r) => toTokens(r, opts));
    if (!refToks.length) throw new RangeError(`corpusBleu: hypothesis ${i} has no reference`);
    sysLen += hyp.length;
    // closest reference length; a tie goes to the shorter reference
    let best = refToks[0]!.length;
    for (const r of refToks) {
      const d = Math.abs(r.length - hyp.length), bd = Math.abs(best - hyp.length);
      if (d < bd || (d === bd && r.length < best)) best = r.length;
    }
    refLen += best;
    for (let n = 1; n <= N; n++) {
      const maxRef = new Map<string, number>();
      for (const r of refToks) for (const [k, c] of ngramCounts(r, n)) maxRef.set(k, Math.max(maxRef.get(k) ?? 0, c));
      for (const [k, c] of ngramCounts(hyp, n)) counts[n - 1] += Math.min(c, maxRef.get(k) ?? 0);
      totals[n - 1] += Math.max(0, hyp.length - n + 1);
    }
  });
  return bleuFromCounts(counts, totals, sysLen, refLen, opts);
}

/** The score from corpus statistics, exactly as sacrebleu's BLEU.compute_bleu. */
export function bleuFromCounts(counts: number[], totals: number[], sysLen: number, refLen: number, opts: BleuOptions = {}): BleuResult {
  const N = counts.length;
  const smooth = opts.smooth ?? 'exp';
  const precisions = new Array<number>(N).fill(0);
  let smoothMteval = 1;
  for (let n = 0; n < N; n++) {
    if (totals[n] === 0) break;
    if (counts[n] === 0) {
      if (smooth === 'exp') { smoothMteval *= 2; precisions[n] = 100 / (smoothMteval * totals[n]!); }
      else if (smooth === 'floor') precisions[n] = (100 * (opts.floorValue ?? 0.1)) / totals[n]!;
    } else precisions[n] = (100 * counts[n]!) / totals[n]!;
  }
  const bp = sysLen < refLen ? (sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0) : 1;
  const logSum = precisions.reduce((a, p) => a + (p > 0 ? Math.log(p) : -Infinity), 0);
  const score = Number.isFinite(logSum) ? bp * Math.exp(logSum / N) : 0;
  return { score, precisions, bp, ratio: refLen > 0 ? sysLen / refLen : 0, sysLen, refLen, counts: [...counts], totals: [...totals] };
}

/** rouge-score's tokenizer: lower-case, runs of non-alphanumerics become spaces. */
export function tokenizeRouge(text: string): string[] {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, ' ').split(/\s+/).filter((t) => /^[a-z0-9]+$/.test(t));
}

/** Length of the longest common subsequence (dynamic programming, O(|a|·|b|) time, O(|b|) memory). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  const prev = new Array<number>(b.length + 1).fill(0);
  const cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    for (let j = 0; j <= b.length; j++) prev[j] = cur[j]!;
  }
  return prev[b.length]!;
}

export interface RougeScore { precision: number; recall: number; f: number }
export interface RougeResult extends RougeScore {
  /** per hypothesis, in input order */
  perSentence: RougeScore[];
}

/** ROUGE-L of one hypothesis against one reference (rouge-score's _score_lcs), F with weight beta (1 = F1). */
export function rougeLSentence(hypothesis: string | string[], reference: string | string[], beta = 1): RougeScore {
  const h = typeof hypothesis === 'string' ? tokenizeRouge(hypothesis) : hypothesis;
  const r = typeof reference === 'string' ? tokenizeRouge(reference) : reference;
  if (!h.length || !r.length) return { precision: 0, recall: 0, f: 0 };
  const l = lcsLength(r, h);
  const precision = l / h.length, recall = l / r.length;
  const b2 = beta * beta;
  const f = precision + recall > 0 ? ((1 + b2) * precision * recall) / (recall + b2 * precision) : 0;
  return { precision, recall, f };
}

/**
 * Corpus ROUGE-L: the mean over sentences of each sentence's scores; with
 * several references per hypothesis, the reference with the best F counts.
 */
export function rougeL(hypotheses: string[], references: Array<string | string[]>, opts: { beta?: number } = {}): RougeResult {
  if (hypotheses.length !== references.length) {
    throw new RangeError(`rougeL: ${hypotheses.length} hypotheses but ${references.length} reference entries`);
  }
  const per = hypotheses.map((h, i) => {
    const refs = typeof references[i] === 'string' ? [references[i] as string] : (references[i] as string[]);
    if (!refs.length) throw new RangeError(`rougeL: hypothesis ${i} has no reference`);
    return refs.map((r) => rougeLSentence(h, r, opts.beta ?? 1)).reduce((a, b) => (b.f > a.f ? b : a));
  });
  const mean = (k: keyof RougeScore) => (per.length ? per.reduce((a, s) => a + s[k], 0) / per.length : 0);
  return { precision: mean('precision'), recall: mean('recall'), f: mean('f'), perSentence: per };
}

/** corpusBleu under its short name (the kernel preloads `bleu`). */
export const bleu = corpusBleu;
