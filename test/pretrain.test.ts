/**
 * Smoke tests of the pretraining scripts on the cpu backend with a tiny
 * model: a run stopped (by step cap or by its wall-clock budget) and resumed
 * ends with exactly the weights of an uninterrupted run, and a finished run
 * exports a folder loadModel and loadTokenizer read.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { datasets } from '../src/data/datasets.js';
import { loadModelFromDir } from '../src/models/load.js';
import { loadTokenizer } from '../src/data/load-tokenizer.js';
import { randomModel } from '../src/models/init.js';
import { readSafetensors } from '../src/models/safetensors.js';
import type { PretrainingDocument } from '../src/data/pretraining.js';
import { readTokenData, writeTokenData, mlmTokenizer, type TokenData } from '../scripts/pretrain/data.js';
import { causalBitsPerByte, modelConfig, parseFlags, preset, UsageError } from '../scripts/pretrain/run.js';
import { main, mlmBatch, mlmMetrics } from '../scripts/pretrain/cli.js';
import { maskedHeadRows } from '../src/data/collate.js';
import { testBackend } from './helpers.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), `sharelora-pretrain-${p}-`));
const quiet = async <T>(fn: () => Promise<T>): Promise<T> => {
  const log = console.log;
  console.log = () => {};
  try { return await fn(); } finally { console.log = log; }
};

describe('pretraining scripts', () => {
  let dataDir: string;
  let data: TokenData;
  before(async () => {
    await testBackend();
    // paragraphs of a few chapters, and 500 merges (vocabulary 757): real text, small enough for the cpu backend
    const { table } = await datasets.mobyDick({ split: 'all' });
    const text = table.array('text') as string[];
    const paragraphs = (chapters: number[]) => chapters.flatMap((c) => text[c]!.split(/\n\s*\n/).filter((p) => p.trim().length > 40).map((p, i): PretrainingDocument => ({ source: 'mobyDick', id: `mobyDick:${c}.${i}`, group: String(c), text: p })));
    dataDir = tmp('data');
    writeTokenData(dataDir, paragraphs([2, 3, 4]), paragraphs([7]).slice(0, 6), { merges: 500, seed: 0 }, { command: 'node (test) prepare' });
    data = readTokenData(dataDir);
  });

  it('prepared data: documents separated by <|endoftext|>, held-out bookkeeping consistent', () => {
    assert.equal(data.vocab, 757);
    assert.equal(data.heldOut[0], data.sep);
    for (const d of data.heldOutDocs) assert.equal(data.heldOut[d.start + d.tokens], data.sep);
    assert.ok(data.train.filter((t) => t === data.sep).length > 20);
    assert.ok(data.train.every((t) => t <= data.sep));
  });

  it('bits per byte scores every held-out token once, whatever the window', async () => {
    const model = randomModel(modelConfig('causal', { ...preset('tiny'), positions: 512 }, data), { seed: 1 });
    const whole = await causalBitsPerByte(model, data, { block: 64, batch: 4 });
    assert.equal(whole.tokens, data.heldOutDocs.reduce((a, d) => a + d.tokens, 0));
    assert.equal(whole.bytes, data.heldOutDocs.reduce((a, d) => a + d.bytes, 0));
    // near-uniform predictions of a fresh model: about log2(vocab) bits a token
    assert.ok(Math.abs(Math.log2(whole.perplexity) - Math.log2(757)) < 0.5, `perplexity ${whole.perplexity}`);
    // one window over the whole first paragraph equals a direct computation
    const d = data.heldOutDocs[0]!;
    const ids = Array.from(data.heldOut.subarray(0, d.start + d.tokens));
    assert.ok(ids.length <= 512, `first held-out paragraph has ${ids.length} tokens`);
    const one = await causalBitsPerByte(model, { ...data, heldOutDocs: [d] }, { block: 512, batch: 1 });
    const nll = tf.tidy(() => {
      const logp = tf.logSoftmax(model.forward({ inputIds: [ids] }).logits);
      const y = tf.oneHot(tf.tensor1d(ids.slice(1), 'int32'), 757);
      return tf.neg(tf.sum(tf.mul(tf.slice(tf.reshape(logp, [ids.length, 757]), [0, 0], [ids.length - 1, 757]), y)));
    });
    const bits = (await nll.data())[0]! / Math.LN2;
    assert.ok(Math.abs(one.bitsPerByte * d.bytes - bits) / bits < 1e-5, `${one.bitsPerByte * d.bytes} vs ${bits}`);
    nll.dispose();
    model.dispose();
  });

  for (const kind of ['causal', 'mlm'] as const) {
    it(`${kind}: stopped and resumed runs end with the weights of an uninterrupted run; the export loads`, async () => {
      const args = (run: string, out: string, extra: string[] = []) => ['train', '--data', dataDir, '--run', run, '--out', out, '--preset', 'tiny', '--batch', '4', '--block', '32',
        '--total-steps', '6', '--warmup', '2', '--lr', '0.01', '--backend', 'cpu', '--budget-minutes', '10', ...extra];
      const [runA, outA, runB, outB] = [tmp('runA'), tmp('outA'), tmp('runB'), tmp('outB')];
      await quiet(() => main(kind, args(runA, outA)));
      // three processes of 2 steps each; the third finishes and exports
      for (let i = 0; i < 3; i++) {
        assert.equal(existsSync(join(outB, 'config.json')), false, 'exported before the last step');
        await quiet(() => main(kind, args(runB, outB, ['--max-steps-this-run', '2'])));
      }
      const params = (run: string) => readSafetensors(join(run, 'checkpoint', 'params.safetensors')).tensors;
      const [a, b] = [params(runA), params(runB)];
      assert.ok(a.size > 10);
      for (const [name, t] of a) assert.deepEqual(b.get(name)!.data, t.data, `${name} differs after stop + resume`);
      const stats = JSON.parse(readFileSync(join(outB, 'training_stats.json'), 'utf8'));
      assert.equal(stats.steps, 6);
      assert.equal(stats.runs.length, 3);
      assert.match(readFileSync(join(outB, 'README.md'), 'utf8'), /tokens seen/);
      const model = loadModelFromDir(outB);
      assert.equal(model.task, kind === 'causal' ? 'causal-lm' : 'masked-lm');
      const tok = loadTokenizer(outB);
      assert.equal(tok.vocabSize, model.config.vocabSize);
      if (kind === 'causal') {
        assert.ok(stats.metrics.heldOutBitsPerByte > 0 && stats.metrics.heldOutBitsPerByte < stats.metrics.unigramBitsPerByte * 2);
        assert.ok(existsSync(join(outB, 'heldout-tokens.bin')));
      } else {
        assert.ok(stats.metrics.maskedAccuracy >= 0 && stats.metrics.maskedAccuracy <= 1 && stats.metrics.maskedTokens > 20);
        assert.equal(tok.tokenToId('<mask>'), mlmTokenizer(500).tokenToId('<mask>'));
        // the encoder loads as a classifier, its masked-LM head explicitly left out
        const cls = loadModelFromDir(outB, { task: 'seq-cls', numLabels: 2 });
        assert.ok(![...cls.weights().keys()].some((k) => k.startsWith('lm_head')));
        cls.dispose();
        // test/embedded's check reads these: the held-out stream in the encoder's ids (</s> between documents) and its counts
        const held = readFileSync(join(outB, 'heldout-tokens.bin'));
        const ids = new Uint16Array(held.buffer, held.byteOffset, held.byteLength / 2);
        const counts = JSON.parse(readFileSync(join(outB, 'unigram-counts.json'), 'utf8')) as number[];
        assert.equal(counts.length, model.config.vocabSize);
        assert.ok(ids.length > 100 && ids.every((t) => t === 2 || (t >= 4 && t < model.config.vocabSize - 1)), 'held-out ids outside the encoder vocabulary');
        assert.deepEqual(counts.slice(0, 4), [0, 0, 0, 0]);
        assert.equal(counts[model.config.vocabSize - 1], 0, '<mask> counted');
      }
      model.dispose();
    });
  }

  it('causal: a model continued twice (--init) records every earlier stage, and its card reproduces them in order', async () => {
    const outs = [tmp('s1'), tmp('s2'), tmp('s3')];
    const args = (i: number, extra: string[]) => ['train', '--data', dataDir, '--run', tmp(`run${i}`), '--out', outs[i]!, '--preset', 'tiny', '--batch', '4', '--block', '32',
      '--total-steps', String(2 + i), '--warmup', '1', '--lr', '0.01', '--backend', 'cpu', '--budget-minutes', '10', '--seed', String(i), ...extra];
    await quiet(() => main('causal', args(0, [])));
    await quiet(() => main('causal', args(1, ['--init', outs[0]!])));
    await quiet(() => main('causal', args(2, ['--init', outs[1]!])));
    const stats = (i: number) => JSON.parse(readFileSync(join(outs[i]!, 'training_stats.json'), 'utf8'));
    const last = stats(2);
    assert.equal(stats(0).lineage, undefined);
    assert.deepEqual(last.lineage.map((g: { steps: number; init?: string }) => [g.steps, g.init]), [[2, undefined], [3, outs[0]]]);
    assert.equal(last.lineage[0].command, stats(0).command.split('\n').at(-1));
    assert.equal(last.lineage[1].metrics.heldOutBitsPerByte, stats(1).metrics.heldOutBitsPerByte);
    assert.equal(last.tokensInAll, (2 + 3 + 4) * 4 * 32);
    const card = readFileSync(join(outs[2]!, 'README.md'), 'utf8');
    const [s1, s2, s3] = ['# stage 1: 2 updates', '# stage 2: 3 updates', '# stage 3 (this model)'].map((m) => card.indexOf(m));
    assert.ok(s1 > 0 && s1 < s2 && s2 < s3, card);
    assert.ok(card.includes(`--init ${outs[1]}`) && card.includes(`--init ${outs[0]}`));
  });

  it('causal eval-text: text from outside the corpus scored per file, paragraphs packed into documents', async () => {
    const out = tmp('evtext');
    await quiet(() => main('causal', ['train', '--data', dataDir, '--run', tmp('evtext-run'), '--out', out, '--preset', 'tiny', '--batch', '4', '--block', '32',
      '--total-steps', '2', '--warmup', '1', '--backend', 'cpu', '--budget-minutes', '10']));
    const { table } = await datasets.mobyDick({ split: 'all' });
    const chapter = (table.array('text') as string[])[9]!;
    const dir = tmp('evtext-files');
    const [a, b] = [join(dir, 'a.txt'), join(dir, 'b.txt')];
    writeFileSync(a, chapter.slice(0, 3000));
    writeFileSync(b, 'One short paragraph.\r\n\r\nAnd a second one, after a Windows blank line.\n');
    const json = join(dir, 'm.json');
    await quiet(() => main('causal', ['eval-text', '--model', out, '--text', `${a},${b}`, '--backend', 'cpu', '--block', '64', '--json', json]));
    const m = JSON.parse(readFileSync(json, 'utf8'));
    const tok = loadTokenizer(out);
    const enc = (s: string) => tok.encode(s, { addSpecialTokens: false }).length;
    // b: two paragraphs, one document, joined by a blank line
    assert.equal(m.perSource['b.txt'].tokens, enc('One short paragraph.\n\nAnd a second one, after a Windows blank line.'));
    assert.equal(m.perSource['a.txt'].bytes + m.perSource['b.txt'].bytes, m.bytes);
    assert.equal(m.tokens, m.perSource['a.txt'].tokens + m.perSource['b.txt'].tokens);
    assert.ok(m.documents >= 2 && m.bitsPerByte > 0 && m.unigramBitsPerByte > 0 && !m.bounded);
    await assert.rejects(() => quiet(() => main('causal', ['eval-text', '--model', out, '--text', join(dir, 'missing.txt')])), (e: Error) => e instanceof UsageError && e.message.includes('missing.txt: no such file'));
    await assert.rejects(() => quiet(() => main('mlm', ['eval-text', '--model', out, '--text', a])), /causal model/);
  });

  it('a clock-sized run still inside its warm-up when stopped resumes (its checkpoint total is never below the warm-up)', async () => {
    const [run, out] = [tmp('wu-run'), tmp('wu-out')];
    const args = (extra: string[]) => ['train', '--data', dataDir, '--run', run, '--out', out, '--preset', 'tiny', '--batch', '2', '--block', '16',
      '--train-minutes', '0.03', '--total-steps', '200000', '--warmup', '100000', '--backend', 'cpu', '--budget-minutes', '10', ...extra];
    await quiet(() => main('causal', args(['--max-steps-this-run', '3'])));
    assert.ok(!existsSync(join(out, 'config.json')));
    await quiet(() => main('causal', args([])));
    const stats = JSON.parse(readFileSync(join(out, 'training_stats.json'), 'utf8'));
    assert.equal(stats.runs.length, 2);
    assert.ok(stats.steps > 3 && stats.steps < 100000, `${stats.steps} steps`);
  });

  it('every periodic save also writes the float16 snapshot, the weights a stopped run would leave at that step', async () => {
    const args = (run: string, out: string, snap: string, extra: string[]) => ['train', '--data', dataDir, '--run', run, '--out', out, '--preset', 'tiny', '--batch', '4', '--block', '32',
      '--total-steps', '3', '--warmup', '1', '--lr', '0.01', '--backend', 'cpu', '--budget-minutes', '10', '--snapshot', snap, ...extra];
    const [snapA, snapB] = [tmp('snapA'), tmp('snapB')];
    // A saves after updates 1 and 2 (not after the last: the export follows) and finishes; B stops after update 2
    await quiet(() => main('causal', args(tmp('snap-runA'), tmp('snap-outA'), snapA, ['--save-every-minutes', '0'])));
    await quiet(() => main('causal', args(tmp('snap-runB'), tmp('snap-outB'), snapB, ['--max-steps-this-run', '2'])));
    const weights = (dir: string) => readSafetensors(join(dir, 'model.safetensors')).tensors;
    const [a, b] = [weights(snapA), weights(snapB)];
    assert.ok(a.size > 10);
    for (const [name, t] of b) assert.deepEqual(a.get(name)!.data, t.data, `${name}: the periodic snapshot is not step 2's weights`);
    assert.equal(loadModelFromDir(snapA).task, 'causal-lm');
  });

  it('a run stops itself before its wall-clock budget, and the next one continues', async () => {
    const [run, out] = [tmp('budget'), tmp('budget-out')];
    const args = (budget: string) => ['train', '--data', dataDir, '--run', run, '--out', out, '--preset', 'tiny', '--batch', '4', '--block', '32',
      '--total-steps', '100000', '--backend', 'cpu', '--budget-minutes', budget];
    const t0 = performance.now();
    // 0.2 min = 12 s; the loop keeps 1.5 × a save (about 2 s here) + 2 steps + 5 s in reserve, so it trains a few seconds and stops
    await quiet(() => main('causal', args('0.2')));
    assert.ok((performance.now() - t0) / 1000 < 12);
    const state = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    assert.equal(state.runs[0].stopped, 'budget (12 s)');
    const first = state.runs[0].toStep;
    await quiet(() => main('causal', [...args('0.2'), '--max-steps-this-run', '1']));
    const again = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    assert.equal(again.runs[1].fromStep, first);
    assert.ok(!existsSync(join(out, 'config.json')));
  });

  it('flags are checked', async () => {
    assert.throws(() => parseFlags(['--dta', 'x'], { data: { kind: 'string', help: '' } }, 'train'), /train: unknown flag --dta/);
    assert.throws(() => parseFlags(['--batch', 'many'], { batch: { kind: 'int', help: '' } }, 'train'), /--batch must be an integer, got "many"/);
    await assert.rejects(main('causal', ['train', '--data', dataDir, '--run', tmp('x'), '--out', tmp('y'), '--budget-minutes', '1', '--preset', 'huge', '--total-steps', '3']), /unknown model preset "huge"/);
    await assert.rejects(main('causal', ['fit']), UsageError);
    const train = (kind: 'causal' | 'mlm', extra: string[]) => main(kind, ['train', '--data', dataDir, '--run', tmp('x'), '--out', tmp('y'), '--budget-minutes', '1', '--preset', 'tiny', '--total-steps', '3', '--warmup', '1', '--backend', 'cpu', ...extra]);
    await assert.rejects(train('mlm', ['--mask-rate', '1.5']), /--mask-rate must be in \(0, 1\), got 1.5/);
    await assert.rejects(train('mlm', ['--mask-rate', '0']), /--mask-rate must be in \(0, 1\)/);
    await assert.rejects(train('causal', ['--mask-rate', '0.3']), /--mask-rate is for the masked LM only/);
    await assert.rejects(train('mlm', ['--beta2', '1']), /--beta2 must be in \(0, 1\), got 1/);
    await assert.rejects(train('mlm', ['--clip', '-1']), /--clip must be ≥ 0/);
    await assert.rejects(train('mlm', ['--position-init', 'rope']), /--position-init must be normal or sinusoidal, got "rope"/);
  });

  it('mlm: the no-context baseline is what a model that only sees its own position scores in mlmMetrics', async () => {
    // that model, as logits: log p(y) at <mask>, the Bayes mixture of "kept" and "random" at a visible id
    const maskId = 256 + data.merges + 4, V = maskId + 1;
    const p = new Float64Array(V);
    let total = 0, D = 0;
    data.unigram.forEach((c, t) => { if (t !== data.sep) { p[t + 4] = c + 1; total += c + 1; D++; } });
    p.forEach((v, i) => { p[i] = v / total; });
    const row = (x: number) => Array.from(p, (py, y) => Math.log(x === maskId ? py || 1e-30 : ((y === x ? p[x]! : 0) + py / D) / (p[x]! + 1 / D) || 1e-30));
    const model = { forward: ({ inputIds }: { inputIds: number[][] }) => ({ logits: tf.tensor3d(inputIds.map((r) => r.map(row))) }) } as unknown as Parameters<typeof mlmMetrics>[0];
    const m = await mlmMetrics(model, data, { block: 32, batch: 8, maxTokens: 1500 });
    assert.ok(m.maskedTokens > 100);
    assert.ok(Math.abs(m.mlmPerplexity - m.noContextPerplexity) < 1e-3 * m.noContextPerplexity, `${m.mlmPerplexity} vs ${m.noContextPerplexity}`);
    assert.ok(Math.abs(m.maskedAccuracy - m.noContextAccuracy) < 1e-9, `${m.maskedAccuracy} vs ${m.noContextAccuracy}`);
    // the 10% kept tokens alone are worth ~10% accuracy
    assert.ok(m.noContextAccuracy > 0.08 && m.noContextAccuracy < 0.25, `${m.noContextAccuracy}`);
  });

  it('mlm: --mask-rate, --beta2 and --clip reach the batches and the optimizer, and are kept with the run', async () => {
    const share = (rate: number) => {
      const b = mlmBatch(data, data.train, 0, 0, 16, 64, rate);
      return b.labels.flat().filter((y) => y !== -100).length / (16 * 62);
    };
    assert.ok(Math.abs(share(0.15) - 0.15) < 0.04, `15%: ${share(0.15)}`);
    assert.ok(Math.abs(share(0.4) - 0.4) < 0.05, `40%: ${share(0.4)}`);
    // the head runs on the masked rows, padded to a count set by the shape alone with distinct unlabelled rows
    for (const step of [0, 1, 2]) {
      const b = mlmBatch(data, data.train, 0, step, 16, 64, 0.15);
      const rows = b.headRows!;
      assert.equal(rows.length, 64 * Math.ceil((16 * 64 * 0.15 + 6 * Math.sqrt(16 * 64 * 0.15 * 0.85)) / 64));
      assert.equal(new Set(rows).size, rows.length);
      const labelled = b.labels.flatMap((r, i) => r.flatMap((y, t) => (y === -100 ? [] : [i * 64 + t])));
      assert.deepEqual(Array.from(rows.subarray(0, labelled.length)), labelled);
      assert.ok(Array.from(rows.subarray(labelled.length)).every((p) => b.labels[Math.floor(p / 64)]![p % 64] === -100));
    }
    // more masked than the count allows: no headRows (the head then runs on every position)
    assert.equal(maskedHeadRows(Array.from({ length: 4 }, () => Array.from({ length: 64 }, (_, t) => (t ? 5 : -100))), 0.15), undefined);
    const [run, out] = [tmp('recipe'), tmp('recipe-out')];
    await quiet(() => main('mlm', ['train', '--data', dataDir, '--run', run, '--out', out, '--budget-minutes', '10', '--preset', 'tiny', '--batch', '4', '--block', '32',
      '--total-steps', '2', '--warmup', '1', '--backend', 'cpu', '--mask-rate', '0.4', '--beta2', '0.98', '--clip', '0.5', '--position-init', 'sinusoidal', '--max-steps-this-run', '1']));
    const state = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    assert.deepEqual([state.settings.maskRate, state.settings.beta2, state.settings.clip, state.settings.positionInit], [0.4, 0.98, 0.5, 'sinusoidal']);
    const ckpt = JSON.parse(readFileSync(join(run, 'checkpoint', 'trainer.json'), 'utf8'));
    assert.match(JSON.stringify(ckpt), /0\.98/);
    // resuming with other recipe flags is refused, like any other setting
    await assert.rejects(main('mlm', ['train', '--data', dataDir, '--run', run, '--out', out, '--budget-minutes', '10', '--preset', 'tiny', '--batch', '4', '--block', '32',
      '--total-steps', '2', '--warmup', '1', '--backend', 'cpu', '--mask-rate', '0.15', '--beta2', '0.98', '--clip', '0.5', '--position-init', 'sinusoidal']), /other settings/);
    await quiet(() => main('mlm', ['train', '--data', dataDir, '--run', run, '--out', out, '--budget-minutes', '10', '--preset', 'tiny', '--batch', '4', '--block', '32',
      '--total-steps', '2', '--warmup', '1', '--backend', 'cpu', '--mask-rate', '0.4', '--beta2', '0.98', '--clip', '0.5', '--position-init', 'sinusoidal']));
    const stats = JSON.parse(readFileSync(join(out, 'training_stats.json'), 'utf8'));
    assert.deepEqual([stats.maskRate, stats.beta2, stats.clip, stats.positionInit], [0.4, 0.98, 0.5, 'sinusoidal']);
  });
});
