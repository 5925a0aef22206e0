/**
 * corpusBleu and rougeL against values counted by hand (the n-gram matches
 * are listed in the comments), plus cases cross-checked with sacrebleu 2.6.0
 * and NLTK 3.10 (their outputs are pasted in as constants).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bleuFromCounts, corpusBleu, lcsLength, rougeL, rougeLSentence, tokenize13a, tokenizeRouge } from '../../src/train/textmetrics.js';

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

describe('corpusBleu', () => {
  it('one sentence, a zero 4-gram precision, under each smoothing', () => {
    // hyp: the cat sat on the mat / ref: the cat is on the mat (6 tokens each, BP = 1)
    // 1-grams: the×2, cat, on, mat match (sat not): 5/6; 2-grams: "the cat", "on the", "the mat": 3/5
    // 3-grams: "on the mat": 1/4; 4-grams: none of 3
    const h = ['the cat sat on the mat'], r = [['the cat is on the mat']];
    const exp = corpusBleu(h, r);
    assert.deepEqual(exp.counts, [5, 3, 1, 0]);
    assert.deepEqual(exp.totals, [6, 5, 4, 3]);
    assert.equal(exp.bp, 1);
    // 'exp': the first zero order gets 100 / (2 · 3)
    close(exp.score, Math.pow((500 / 6) * 60 * 25 * (100 / 6), 1 / 4));
    close(exp.score, 37.991784282579630, 1e-9);
    assert.equal(corpusBleu(h, r, { smooth: 'none' }).score, 0);
    // 'floor': 100 · 0.1 / 3
    close(corpusBleu(h, r, { smooth: 'floor' }).score, Math.pow((500 / 6) * 60 * 25 * (10 / 3), 1 / 4));
  });

  it('brevity penalty exp(1 − r/c) over corpus lengths', () => {
    // 4 hypothesis tokens, 8 reference tokens, every n-gram matches
    const b = corpusBleu(['a b c d'], ['a b c d e f g h']);
    close(b.bp, Math.exp(-1));
    close(b.score, 100 * Math.exp(-1));
    assert.equal(b.ratio, 0.5);
    // corpus-level: lengths add up before the penalty (8 vs 11 tokens)
    const c = corpusBleu(['a b c d e', 'f g h'], [['a b c d e f g'], ['f g h i']]);
    assert.deepEqual([c.sysLen, c.refLen], [8, 11]);
    close(c.score, 100 * Math.exp(1 - 11 / 8));
  });

  it('clips by the largest count in any reference and picks the closest reference length (ties: the shorter)', () => {
    // "the the the" vs refs with the×1 and the×2: clipped 2/3
    const b = corpusBleu(['the the the'], [['the cat', 'the the dog']], { maxOrder: 1 });
    assert.deepEqual(b.counts, [2]);
    // lengths 2 and 3 vs 3: closest is 3
    assert.equal(b.refLen, 3);
    close(b.score, (100 * 2) / 3);
    // refs of 4 and 2 tokens are both 1 away from 3: the shorter wins, so no penalty
    const t = corpusBleu(['a b c'], [['a b c d', 'a b']], { maxOrder: 3 });
    assert.equal(t.refLen, 2);
    close(t.score, 100);
    // with 4-grams the hypothesis has none: sacrebleu stops and the score is 0
    assert.equal(corpusBleu(['a b c'], [['a b c d', 'a b']]).score, 0);
  });

  it('matches sacrebleu 2.6.0 and NLTK 3.10 on mixed cases', () => {
    const cases: Array<[string[], string[][], number, number]> = [
      // [hypotheses, references per hypothesis, sacrebleu score, nltk corpus_bleu × 100 on 13a tokens]
      [['the cat sat on the mat', 'there is a cat on the mat'], [['the cat is on the mat', 'a cat sat on the mat'], ['there is a cat on the mat']], 93.4275955456, 93.4275955456],
      [['The quick brown fox jumps over the lazy dog.', "It's 3.14, not 3,14!"], [['A quick brown fox jumped over the lazy dog.', 'The fast brown fox jumps over a lazy dog.'], ['It is 3.14, not 3,14!']], 69.6018099822, 69.6018099822],
      [['x y z w v u t', 'p q r s'], [['x y z w', 'x y z w v u t s r q'], ['p q r s t u v w']], 91.3100716282, 91.3100716282],
    ];
    for (const [h, r, sacre, nltk] of cases) {
      close(corpusBleu(h, r).score, sacre, 1e-8);
      close(corpusBleu(h, r, { smooth: 'none' }).score, nltk, 1e-8);
    }
    // sacrebleu: exp 13.3096106521, floor 7.0784447721, none 0
    const h = ['hello world , this is a test .', 'short'], r = [['hello world this is the test .'], ['a much longer reference sentence']];
    close(corpusBleu(h, r).score, 13.3096106521, 1e-8);
    close(corpusBleu(h, r, { smooth: 'floor' }).score, 7.0784447721, 1e-8);
  });

  it('bleuFromCounts and errors', () => {
    close(bleuFromCounts([4, 3, 2, 1], [4, 3, 2, 1], 4, 4).score, 100);
    assert.equal(bleuFromCounts([0, 0, 0, 0], [4, 3, 2, 1], 4, 4, { smooth: 'none' }).score, 0);
    assert.throws(() => corpusBleu(['a'], []), /1 hypotheses but 0 reference entries/);
    assert.throws(() => corpusBleu(['a'], [[]]), /hypothesis 0 has no reference/);
  });

  it('tokenize13a as sacrebleu splits (outputs pasted from sacrebleu 2.6.0)', () => {
    assert.deepEqual(tokenize13a("Hello, world! It's 3.14 -- e.g. U.S.A. (test) 1-2 &amp; a.b,c 1,000.5 x.y"),
      ['Hello', ',', 'world', '!', "It's", '3.14', '--', 'e', '.', 'g', '.', 'U', '.', 'S', '.', 'A', '.', '(', 'test', ')', '1', '-', '2', '&', 'a', '.', 'b', ',', 'c', '1,000.5', 'x', '.', 'y']);
    assert.deepEqual(tokenize13a("don't stop-me now: $5/10 [ok]"), ["don't", 'stop-me', 'now', ':', '$', '5', '/', '10', '[', 'ok', ']']);
    assert.deepEqual(corpusBleu(['A B'], ['a b'], { lowercase: true }).counts, [2, 1, 0, 0]);
  });
});

describe('rougeL', () => {
  it('LCS precision, recall and F (hand-computed)', () => {
    // LCS of "the cat sat on the mat" and "the cat is on the mat": the cat on the mat = 5
    assert.equal(lcsLength(tokenizeRouge('the cat is on the mat'), tokenizeRouge('the cat sat on the mat')), 5);
    const s = rougeLSentence('the cat sat on the mat', 'the cat is on the mat');
    close(s.precision, 5 / 6); close(s.recall, 5 / 6); close(s.f, 5 / 6);
    // hyp a b c d, ref a x b: LCS 2, P = 1/2, R = 2/3, F = 2PR/(P+R) = 4/7
    const t = rougeLSentence('A, B. c d', 'a x b');
    close(t.precision, 0.5); close(t.recall, 2 / 3); close(t.f, 4 / 7);
    // beta weighs recall: F = (1+β²)PR / (R + β²P)
    close(rougeLSentence('A, B. c d', 'a x b', 1.2).f, (2.44 * 0.5 * (2 / 3)) / (2 / 3 + 1.44 * 0.5));
    assert.deepEqual(rougeLSentence('', 'a'), { precision: 0, recall: 0, f: 0 });
  });
  it('tokenises like rouge-score and averages over the corpus; best reference wins', () => {
    assert.deepEqual(tokenizeRouge("Hello, World! It's e-mail_2"), ['hello', 'world', 'it', 's', 'e', 'mail', '2']);
    const r = rougeL(['police killed the gunman', 'a b c d'], [['police kill the gunman', 'the gunman was killed by police'], 'a x b']);
    // sentence 1: "police kill the gunman" has LCS 3 (police, the, gunman): F 0.75; the other reference has LCS 2 ("the gunman"): F 0.4
    close(r.perSentence[0]!.f, 0.75);
    close(r.perSentence[1]!.f, 4 / 7);
    close(r.f, (0.75 + 4 / 7) / 2);
    assert.throws(() => rougeL(['a'], []), /1 hypotheses but 0 reference entries/);
  });
});
