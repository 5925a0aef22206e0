/**
 * RobertaForMaskedLM. The encoder is checked against transformers through the
 * reference fixture (its classifier logits, recomputed here in plain
 * JavaScript from the hidden states the masked-LM model produces); the head,
 * the tie, the loss and the saved folder are checked by independent
 * arithmetic. scripts/check_roberta_mlm.py compares whole logits with
 * transformers' RobertaForMaskedLM on the GPU machine.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModelFromDir } from '../src/models/load.js';
import { randomModel } from '../src/models/init.js';
import { saveModel } from '../src/models/save.js';
import { readSafetensors, serializeSafetensors } from '../src/models/safetensors.js';
import { Roberta } from '../src/models/roberta.js';
import { fullFineTune } from '../src/adapters/full.js';
import { lossAndGrads } from '../src/train/loss.js';
import { Trainer } from '../src/train/trainer.js';
import { expected, FIXTURES, relErr, testBackend } from './helpers.js';

const TINY = {
  model_type: 'roberta', vocab_size: 40, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 32,
  max_position_embeddings: 20, type_vocab_size: 1, layer_norm_eps: 1e-5, hidden_act: 'gelu', pad_token_id: 1, bos_token_id: 0, eos_token_id: 2,
  initializer_range: 0.2,
};
const IDS = [[0, 5, 9, 4, 12, 7, 2], [0, 33, 6, 2, 1, 1, 1]];
const MASK = [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]];
const LABELS = [[-100, 17, -100, -100, 12, -100, -100], [-100, -100, 21, -100, -100, -100, -100]];

const erfGelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
function erf(x: number): number {
  // Numerical Recipes' erfc fit, relative error below 1.2e-7 (Abramowitz-Stegun 7.1.26 is too coarse for these checks)
  const t = 1 / (1 + 0.5 * Math.abs(x));
  const y = 1 - t * Math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? y : -y;
}

/** the masked-LM head in plain arithmetic: dense -> gelu -> layer_norm -> E^T + bias */
function headLogits(h: Float32Array, w: Map<string, Float32Array>, C: number, V: number, eps: number): Float64Array {
  const dw = w.get('lm_head.dense.weight')!, db = w.get('lm_head.dense.bias')!, g = w.get('lm_head.layer_norm.weight')!, b = w.get('lm_head.layer_norm.bias')!;
  const E = w.get('roberta.embeddings.word_embeddings.weight')!, bias = w.get('lm_head.bias')!;
  const rows = h.length / C;
  const out = new Float64Array(rows * V);
  for (let r = 0; r < rows; r++) {
    const y = new Float64Array(C);
    for (let o = 0; o < C; o++) { let s = db[o]; for (let i = 0; i < C; i++) s += dw[o * C + i] * h[r * C + i]; y[o] = erfGelu(s); }
    const mean = y.reduce((a, v) => a + v, 0) / C;
    const vr = y.reduce((a, v) => a + (v - mean) ** 2, 0) / C;
    const z = y.map((v, i) => ((v - mean) / Math.sqrt(vr + eps)) * g[i] + b[i]);
    for (let v = 0; v < V; v++) { let s = bias[v]; for (let i = 0; i < C; i++) s += z[i] * E[v * C + i]; out[r * V + v] = s; }
  }
  return out;
}

async function weightsOf(m: Roberta): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [n, ref] of m.weights()) out.set(n, await ref.get().data() as Float32Array);
  return out;
}

describe('RobertaForMaskedLM', () => {
  before(async () => { await testBackend(); });

  it('loads the reference encoder as a masked LM: its hidden states give transformers\' classifier logits', async () => {
    const dir = join(FIXTURES, 'roberta', 'model');
    const m = loadModelFromDir(dir, { task: 'masked-lm' }) as Roberta;
    assert.equal(m.task, 'masked-lm');
    // the checkpoint's classifier is left out explicitly, and a fresh lm_head takes its place
    assert.ok(![...m.weights().keys()].some((k) => k.startsWith('classifier.')));
    assert.ok(m.weights().has('lm_head.dense.weight') && !m.weights().has('lm_head.decoder.weight'));
    const e = expected('roberta');
    const [B, T] = e.get('input_ids')!.shape;
    const rows = (t: { data: ArrayLike<number> }) => Array.from({ length: B }, (_, b) => Array.from(t.data).slice(b * T, (b + 1) * T));
    const h = m.hiddenStates({ inputIds: rows(e.get('input_ids')!), attentionMask: rows(e.get('attention_mask')!) });
    const hv = await h.data() as Float32Array;
    const C = m.config.hidden;
    const st = readSafetensors(join(dir, 'model.safetensors')).tensors;
    const get = (n: string) => st.get(n)!.data as Float32Array;
    const [dw, db, ow, ob] = ['classifier.dense.weight', 'classifier.dense.bias', 'classifier.out_proj.weight', 'classifier.out_proj.bias'].map(get);
    const L = ob.length;
    const ours: number[] = [];
    for (let b = 0; b < B; b++) {
      const cls = hv.subarray(b * T * C, b * T * C + C);
      const y = Array.from({ length: C }, (_, o) => Math.tanh(cls.reduce((s, v, i) => s + v * dw[o * C + i], db[o])));
      for (let k = 0; k < L; k++) ours.push(y.reduce((s, v, i) => s + v * ow[k * C + i], ob[k]));
    }
    const err = relErr(ours, e.get('base_logits')!.data as Float32Array);
    assert.ok(err < 1e-4, `classifier logits from the masked-LM encoder differ by ${err}`);
    // and the masked-LM logits are the head applied to those hidden states
    const logits = m.forward({ inputIds: rows(e.get('input_ids')!), attentionMask: rows(e.get('attention_mask')!) }).logits;
    assert.deepEqual(logits.shape, [B, T, m.config.vocabSize]);
    const want = headLogits(hv, await weightsOf(m), C, m.config.vocabSize, m.config.eps);
    assert.ok(relErr(await logits.data(), want) < 1e-4);
    tf.dispose([h, logits]);
    m.dispose();
  });

  it('loss is cross-entropy over the labelled positions only (-100 ignored), and the decoder is tied to the embeddings', async () => {
    const m = randomModel(TINY, { seed: 3, task: 'masked-lm' }) as Roberta;
    const V = TINY.vocab_size, C = TINY.hidden_size;
    const logits = m.forward({ inputIds: IDS, attentionMask: MASK }).logits;
    const lv = await logits.data() as Float32Array;
    let nll = 0, n = 0;
    const T = IDS[0].length;
    LABELS.forEach((row, b) => row.forEach((y, t) => {
      if (y === -100) return;
      const z = lv.subarray((b * T + t) * V, (b * T + t + 1) * V);
      const max = Math.max(...z);
      nll -= z[y] - max - Math.log(z.reduce((s, v) => s + Math.exp(v - max), 0));
      n++;
    }));
    const loss = m.loss(logits, tf.tensor2d(LABELS, undefined, 'int32'));
    assert.ok(Math.abs((await loss.data())[0] - nll / n) < 1e-5);

    // d loss / d E[v] for a token v that occurs in no input reaches E only through the tied decoder:
    // sum over labelled positions of (softmax_v - [y = v]) * head_output / n
    const v = 30;
    assert.ok(!IDS.flat().includes(v));
    const h = m.hiddenStates({ inputIds: IDS, attentionMask: MASK });
    const hv = await h.data() as Float32Array;
    const w = await weightsOf(m);
    const full = fullFineTune(m);
    const { grads } = await lossAndGrads(m, full, { inputIds: IDS, attentionMask: MASK, labels: LABELS });
    const gE = await grads.get('roberta.embeddings.word_embeddings.weight')!.data() as Float32Array;
    // the head output before the decoder, in plain arithmetic
    const dw = w.get('lm_head.dense.weight')!, db = w.get('lm_head.dense.bias')!, g = w.get('lm_head.layer_norm.weight')!, bb = w.get('lm_head.layer_norm.bias')!;
    const want = new Float64Array(C);
    LABELS.forEach((row, b) => row.forEach((y, t) => {
      if (y === -100) return;
      const r = b * T + t;
      const yv = Array.from({ length: C }, (_, o) => erfGelu(Array.from({ length: C }, (_, i) => dw[o * C + i] * hv[r * C + i]).reduce((a, x) => a + x, db[o])));
      const mean = yv.reduce((a, x) => a + x, 0) / C, vr = yv.reduce((a, x) => a + (x - mean) ** 2, 0) / C;
      const z = yv.map((x, i) => ((x - mean) / Math.sqrt(vr + m.config.eps)) * g[i] + bb[i]);
      const row_ = lv.subarray(r * V, (r + 1) * V);
      const max = Math.max(...row_), den = row_.reduce((s, x) => s + Math.exp(x - max), 0);
      const p = Math.exp(row_[v] - max) / den - (y === v ? 1 : 0);
      z.forEach((zi, i) => (want[i] += (p * zi) / n));
    }));
    const got = gE.subarray(v * C, (v + 1) * C);
    assert.ok(want.some((x) => Math.abs(x) > 1e-6));
    assert.ok(relErr(got, want) < 1e-3, `embedding row ${v} gradient through the tied decoder: rel err ${relErr(got, want)}`);
    // one tensor, not two: the tie adds no parameter
    assert.equal(m.baseParameterCount(), [...w.values()].reduce((a, x) => a + x.length, 0));
    assert.ok(!grads.has('lm_head.decoder.weight'));
    tf.dispose([logits, loss, h, ...grads.values()]);
  });

  it('headRows: the head on the labelled rows only (padded with an unlabelled one) gives the full loss, its gradients and evaluate()\'s metrics; rows that leave a label out, or a model of another task, are errors', async () => {
    const m = randomModel(TINY, { seed: 5, task: 'masked-lm' }) as Roberta;
    const T = IDS[0].length;
    // the labelled positions (1, 4, 9), then position 0 (<s>, unlabelled) twice as padding
    const headRows = [1, 4, T + 2, 0, 0];
    const full = fullFineTune(m);
    const a = await lossAndGrads(m, full, { inputIds: IDS, attentionMask: MASK, labels: LABELS });
    const b = await lossAndGrads(m, full, { inputIds: IDS, attentionMask: MASK, labels: LABELS, headRows });
    assert.ok(Math.abs(a.loss - b.loss) < 1e-6 * Math.abs(a.loss), `loss ${b.loss} against ${a.loss}`);
    for (const [name, g] of a.grads) {
      const [x, y] = [await g.data() as Float32Array, await b.grads.get(name)!.data() as Float32Array];
      assert.ok(relErr(y, Float64Array.from(x)) < 1e-5, `${name}: rel err ${relErr(y, Float64Array.from(x))}`);
    }
    tf.dispose([...a.grads.values(), ...b.grads.values()]);
    const logits = m.forward({ inputIds: IDS, attentionMask: MASK, headRows: tf.tensor1d(headRows, 'int32') }).logits;
    assert.deepEqual(logits.shape, [1, headRows.length, TINY.vocab_size]);
    logits.dispose();
    const trainer = new Trainer(m, full, { lr: 1e-3, schedule: 'constant' });
    const e1 = await trainer.evaluate([{ inputIds: IDS, attentionMask: MASK, labels: LABELS }]);
    const e2 = await trainer.evaluate([{ inputIds: IDS, attentionMask: MASK, labels: LABELS, headRows }]);
    assert.ok(Math.abs(e1.loss - e2.loss) < 1e-6 * e1.loss);
    assert.equal(e2.metrics.accuracy, e1.metrics.accuracy);
    // a labelled position left out would drop its loss silently
    await assert.rejects(trainer.step({ inputIds: IDS, attentionMask: MASK, labels: LABELS, headRows: [1, 4, 0] }), /headRows.*leaves out position 9 \(labels\[1\]\[2\] = 21\)/);
    await assert.rejects(trainer.step({ inputIds: IDS, attentionMask: MASK, labels: LABELS, headRows: [1, 4, 9, 14] }), /headRows\[3\].*is 14, expected a position in \[0, 14\)/);
    await assert.rejects(trainer.step({ inputIds: IDS, attentionMask: MASK, labels: LABELS, headRows: [] }), /headRows.*non-empty array/);
    const t = tf.tensor1d(headRows, 'int32');
    await assert.rejects(trainer.step({ inputIds: IDS, attentionMask: MASK, labels: LABELS, headRows: t }), /headRows.*host positions.*not a tensor/);
    t.dispose();
    trainer.dispose();
    const cls = randomModel(TINY, { seed: 5, task: 'seq-cls' });
    await assert.rejects(lossAndGrads(cls, fullFineTune(cls), { inputIds: IDS, labels: [0, 1], headRows: [0] }), /headRows.*is for a masked LM.*"seq-cls"/);
    assert.throws(() => cls.forward({ inputIds: IDS, headRows: tf.tensor1d([0], 'int32') }), /headRows is for the masked-LM head/);
  });

  it('saves a folder transformers can load (RobertaForMaskedLM, decoder tied, not written) and loads it back; seq-cls takes the encoder and ignores lm_head', async () => {
    const m = randomModel(TINY, { seed: 5, task: 'masked-lm' }) as Roberta;
    const dir = mkdtempSync(join(tmpdir(), 'sharelora-mlm-'));
    await saveModel(m, dir);
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, ['RobertaForMaskedLM']);
    assert.equal(config.tie_word_embeddings, true);
    const names = [...readSafetensors(join(dir, 'model.safetensors')).tensors.keys()];
    for (const n of ['lm_head.dense.weight', 'lm_head.dense.bias', 'lm_head.layer_norm.weight', 'lm_head.layer_norm.bias', 'lm_head.bias']) assert.ok(names.includes(n), n);
    assert.ok(!names.some((n) => n.startsWith('lm_head.decoder') || n.startsWith('classifier')));
    const back = loadModelFromDir(dir) as Roberta;
    assert.equal(back.task, 'masked-lm');
    const [a, b] = [m.forward({ inputIds: IDS, attentionMask: MASK }).logits, back.forward({ inputIds: IDS, attentionMask: MASK }).logits];
    assert.deepEqual(await a.data(), await b.data());

    const cls = loadModelFromDir(dir, { task: 'seq-cls', numLabels: 3 }) as Roberta;
    assert.equal(cls.task, 'seq-cls');
    const keys = [...cls.weights().keys()];
    assert.ok(keys.includes('classifier.out_proj.weight') && !keys.some((k) => k.startsWith('lm_head')));
    const emb = 'roberta.embeddings.word_embeddings.weight';
    assert.deepEqual(await cls.weights().get(emb)!.get().data(), await m.weights().get(emb)!.get().data());
    assert.deepEqual(cls.forward({ inputIds: IDS, attentionMask: MASK }).logits.shape, [2, 3]);
    tf.dispose([a, b]);
    [m, back, cls].forEach((x) => x.dispose());
  });

  it('reads older checkpoints: the bias under lm_head.decoder.bias, a tied decoder saved anyway', async () => {
    const m = randomModel(TINY, { seed: 6, task: 'masked-lm' }) as Roberta;
    const dir = mkdtempSync(join(tmpdir(), 'sharelora-mlm-old-'));
    await saveModel(m, dir);
    const st = readSafetensors(join(dir, 'model.safetensors')).tensors;
    const renamed = new Map([...st].map(([n, t]) => [n === 'lm_head.bias' ? 'lm_head.decoder.bias' : n, { ...t, dtype: 'F32' as const }]));
    renamed.set('lm_head.decoder.weight', { ...st.get('roberta.embeddings.word_embeddings.weight')!, dtype: 'F32' });
    writeFileSync(join(dir, 'model.safetensors'), serializeSafetensors(renamed as never));
    const back = loadModelFromDir(dir, { task: 'masked-lm' });
    assert.deepEqual(await back.forward({ inputIds: IDS }).logits.data(), await m.forward({ inputIds: IDS }).logits.data());
    assert.ok(existsSync(join(dir, 'config.json')));
    assert.throws(() => loadModelFromDir(join(FIXTURES, 'gpt2', 'model'), { task: 'masked-lm' }), /task "masked-lm" needs a RoBERTa checkpoint, not gpt2/);
    assert.throws(() => loadModelFromDir(dir, { task: 'causal-lm' }), /RoBERTa is an encoder/);
    assert.throws(() => loadModelFromDir(dir, { task: 'mlm' as never }), /task "mlm" is not one of causal-lm, seq-cls, masked-lm/);
  });

  it('randomModel positionInit: sinusoidal fills the position table with sin/cos at the init RMS (padding row zero), leaving every other tensor as the default draws it', async () => {
    const a = randomModel(TINY, { seed: 8, task: 'masked-lm' }) as Roberta;
    const b = randomModel(TINY, { seed: 8, task: 'masked-lm', positionInit: 'sinusoidal' }) as Roberta;
    const [wa, wb] = [await weightsOf(a), await weightsOf(b)];
    const P = 'roberta.embeddings.position_embeddings.weight', C = TINY.hidden_size;
    for (const [n, v] of wa) if (n !== P) assert.deepEqual(wb.get(n), v, `${n} changed`);
    const pos = wb.get(P)!;
    assert.ok(pos.slice(C, 2 * C).every((x) => x === 0), 'the padding row is zero');
    const std = TINY.initializer_range;
    for (const t of [2, 7]) {
      assert.ok(Math.abs(pos[t * C + 2]! - Math.SQRT2 * std * Math.sin(t / 10000 ** (2 / C))) < 1e-6);
      assert.ok(Math.abs(pos[t * C + 3]! - Math.SQRT2 * std * Math.cos(t / 10000 ** (2 / C))) < 1e-6);
      const rms = Math.sqrt(pos.slice(t * C, (t + 1) * C).reduce((s, x) => s + x * x, 0) / C);
      assert.ok(Math.abs(rms - std) < 1e-6, `row ${t} RMS ${rms}`);
    }
    assert.throws(() => randomModel(TINY, { task: 'masked-lm', positionInit: 'rope' as never }), /positionInit.*must be "normal" or "sinusoidal"/);
    assert.throws(() => randomModel(TINY, { task: 'masked-lm', posInit: 'sinusoidal' } as never), /posInit/);
    a.dispose(); b.dispose();
  });
});
