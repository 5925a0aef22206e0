/**
 * Step replay (SHARELORA_WEBGPU_REPLAY=1; src/train/step-replay.ts,
 * src/backend/webgpu/replay.ts) against the normal webgpu path: the same
 * model, adapter, batches and options trained with and without it must give
 * the same losses and the same parameters, and the replay must actually have
 * replaced steps. Runs on lavapipe here and on the GPU machine.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModelFromDir } from '../../src/models/load.js';
import { injectShareLoRA } from '../../src/adapters/sharelora.js';
import { Trainer } from '../../src/train/trainer.js';
import { replayStats } from '../../src/train/step-replay.js';
import { liveReplays, preparedSubmits } from '../../src/backend/webgpu/replay.js';
import type { Batch } from '../../src/data/batch.js';
import { FIXTURES, withEnv } from '../helpers.js';
import { randomModel } from '../../src/models/init.js';
import { fullFineTune } from '../../src/adapters/full.js';
import { collateMaskedLM } from '../../src/data/collate.js';
import { Rng } from '../../src/util/rng.js';
import { assertParamsClose, releaseGPU, spamLikeBatches as batches, webgpuUnavailable } from './helpers.js';

let skip: string | undefined;


interface Run { summary?: { steps: number; replayed: number; refused: Record<string, number> }; losses: number[]; params: Map<string, Float32Array>; replayed: number; refused: Record<string, number>; /** free bytes in the pool when fit() returned */ poolBytes: number }

async function train(replay: boolean, data: Batch[], opts: { dropout?: number; epochs?: number; asTensors?: boolean } = {}): Promise<Run> {
  process.env.SHARELORA_WEBGPU_REPLAY = replay ? '1' : '0';
  const before = { ...replayStats, refused: { ...replayStats.refused } };
  const m = loadModelFromDir(join(FIXTURES, 'gpt2', 'model'), { task: 'seq-cls', numLabels: 2, seed: 3 });
  const ad = injectShareLoRA(m, { r: 4, alpha: 8, targets: ['q', 'v'], share: 'A', seed: 5, dropout: opts.dropout ?? 0 });
  const made: tf.Tensor[] = [];
  const train = opts.asTensors
    ? data.map((b) => {
      const t = { inputIds: tf.tensor2d(b.inputIds as number[][], undefined, 'int32'), attentionMask: tf.tensor2d(b.attentionMask as number[][], undefined, 'int32'), labels: tf.tensor1d(b.labels as number[], 'int32') };
      made.push(t.inputIds, t.attentionMask, t.labels);
      return t as Batch;
    })
    : data;
  const trainer = new Trainer(m, ad, { lr: 2e-2, seed: 1, weightDecay: 0.01 });
  try {
    await trainer.fit({ train, epochs: opts.epochs ?? 2, shuffle: true });
    const bm = (tf.backend() as unknown as { bufferManager: { numBytesAllocated: number; numBytesUsed: number } }).bufferManager;
    const poolBytes = bm.numBytesAllocated - bm.numBytesUsed;
    const params = new Map<string, Float32Array>();
    for (const [n, v] of ad.namedParameters()) params.set(n, (await v.data()) as Float32Array);
    const refused: Record<string, number> = {};
    for (const [k, v] of Object.entries(replayStats.refused)) if (v !== (before.refused[k] ?? 0)) refused[k] = v - (before.refused[k] ?? 0);
    return { summary: trainer.lastReplay, losses: trainer.records.map((r) => r.loss), params, replayed: replayStats.replayed - before.replayed, refused, poolBytes };
  } finally {
    trainer.dispose(); ad.unload(); m.dispose(); tf.dispose(made);
    delete process.env.SHARELORA_WEBGPU_REPLAY;
  }
}

function assertSame(a: Run, b: Run): void {
  assert.equal(a.losses.length, b.losses.length);
  a.losses.forEach((l, i) => assert.ok(Math.abs(l - b.losses[i]) <= 1e-5 * Math.max(1, Math.abs(l)), `loss of update ${i + 1}: ${b.losses[i]} with replay, ${l} without`));
  assertParamsClose(a.params, b.params, 1e-5);
}

describe('step replay on webgpu', () => {
  before(async () => { skip = await webgpuUnavailable(); if (skip) console.log(`# SKIP step replay: ${skip}`); });
  after(() => releaseGPU());

  it('replays most steps of a fixed-shape fit and trains exactly as the normal path does', async (t) => {
    if (skip) return t.skip(skip);
    const data = batches(6, 4, 12, 7);
    const plain = await train(false, data);
    const replayed = await train(true, data);
    assert.equal(plain.replayed, 0);
    assert.equal(plain.summary, undefined, 'SHARELORA_WEBGPU_REPLAY=0: no replay tried');
    assert.deepEqual(replayed.summary, { steps: 12, replayed: replayed.replayed, refused: {}, pipelined: 0 });
    // 12 updates: 2 warm-up, 2 recorded, 1 verified beside a normal step, the rest replayed
    assert.ok(replayed.replayed >= 6, `only ${replayed.replayed} of 12 steps replayed (refusals: ${JSON.stringify(replayed.refused)})`);
    assertSame(plain, replayed);
    assert.equal(liveReplays(), 0, 'fit() left a replay pinning buffers');
    // the replay's buffers are destroyed when fit() returns: the pool keeps one step's working set, as without replay, not two
    assert.ok(replayed.poolBytes <= plain.poolBytes * 1.25, `free pool bytes after fit(): ${replayed.poolBytes} with replay, ${plain.poolBytes} without`);
  });

  it('submits a replayed step in growing command buffers (SHARELORA_WEBGPU_REPLAY_CHUNK), training as one buffer does', async (t) => {
    if (skip) return t.skip(skip);
    const data = batches(6, 4, 12, 7);
    const queueProto = Object.getPrototypeOf((tf.backend() as unknown as { queue: object }).queue) as { submit: (...a: unknown[]) => unknown };
    const submit = queueProto.submit;
    const counted = async (chunk: string) => {
      let n = 0;
      queueProto.submit = function (this: unknown, ...a: unknown[]) { n++; return submit.apply(this, a); };
      try {
        const run = await withEnv('SHARELORA_WEBGPU_REPLAY_CHUNK', chunk, () => train(true, data));
        return { run, submits: n };
      } finally {
        queueProto.submit = submit;
      }
    };
    const one = await counted('0');
    const chunked = await counted('4');
    assert.equal(chunked.run.replayed, one.run.replayed);
    assert.ok(one.run.replayed >= 6);
    // this step is ~150 dispatches: 4, 8, 16, 32, 64 and the rest, five more submits a replayed step than one buffer
    assert.ok(chunked.submits >= one.submits + 4 * one.run.replayed, `${chunked.submits} submits in chunks of 4, 8, …; ${one.submits} in one buffer, over ${one.run.replayed} replayed steps`);
    assertSame(one.run, chunked.run);
    chunked.run.params.forEach((v, k) => assert.deepEqual(v, one.run.params.get(k), `${k}: the same commands in the same order give the same bits`));
  });

  it('encodes each replayed step while the one before runs (SHARELORA_WEBGPU_REPLAY_PREPARE), training as encoding at submit does', async (t) => {
    if (skip) return t.skip(skip);
    const data = batches(6, 4, 12, 7);
    const counted = async (prepare: string) => {
      const before = preparedSubmits();
      const run = await withEnv('SHARELORA_WEBGPU_REPLAY_PREPARE', prepare, () => train(true, data));
      return { run, prepared: preparedSubmits() - before };
    };
    const late = await counted('0');
    const ahead = await counted('1');
    assert.equal(late.prepared, 0);
    assert.ok(late.run.replayed >= 6);
    assert.equal(ahead.run.replayed, late.run.replayed);
    // every replayed step comes from the buffer its predecessor's submit encoded (the first one's from the verification step's)
    assert.equal(ahead.prepared, ahead.run.replayed, `${ahead.prepared} of ${ahead.run.replayed} replayed steps prepared`);
    assert.equal(liveReplays(), 0, 'fit() left a replay (and its prepared buffer) behind');
    ahead.run.params.forEach((v, k) => assert.deepEqual(v, late.run.params.get(k), `${k}: the same commands in the same order give the same bits`));
    assert.deepEqual(ahead.run.losses, late.run.losses);
  });

  it('takes the batch from tensors the caller owns, and leaves them untouched', async (t) => {
    if (skip) return t.skip(skip);
    const data = batches(5, 4, 12, 11);
    const plain = await train(false, data, { asTensors: true });
    const replayed = await train(true, data, { asTensors: true });
    assert.ok(replayed.replayed >= 4, `only ${replayed.replayed} steps replayed (refusals: ${JSON.stringify(replayed.refused)})`);
    assertSame(plain, replayed);
  });

  it('a second batch shape gets its own replay; the losses still match', async (t) => {
    if (skip) return t.skip(skip);
    const data = [...batches(4, 4, 12, 5), ...batches(4, 4, 9, 6)];
    const plain = await train(false, data, { epochs: 3 });
    const replayed = await train(true, data, { epochs: 3 });
    assert.ok(replayed.replayed >= 6, `only ${replayed.replayed} steps replayed (refusals: ${JSON.stringify(replayed.refused)})`);
    assertSame(plain, replayed);
  });

  it('a masked LM whose head runs on padded masked rows (headRows, a fixed count) replays, and trains as the full head does', async (t) => {
    if (skip) return t.skip(skip);
    const cfg = { model_type: 'roberta', vocab_size: 40, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 20, type_vocab_size: 1, layer_norm_eps: 1e-5, hidden_act: 'gelu', pad_token_id: 1, bos_token_id: 0, eos_token_id: 2 };
    const data = Array.from({ length: 8 }, (_, step) => {
      const rng = new Rng(100 + step);
      const rows = Array.from({ length: 4 }, () => [0, ...Array.from({ length: 10 }, () => 4 + Math.floor(rng.next() * 34)), 2]);
      const b = collateMaskedLM(rows, { maskId: 39, vocabSize: 40, specialIds: [0, 1, 2, 3], padId: 1, seed: step, probability: 0.3, headRows: true });
      return { inputIds: b.inputIds, attentionMask: b.attentionMask, labels: b.labels as number[][], headRows: b.headRows as Int32Array };
    });
    assert.ok(data.every((b) => b.headRows.length === data[0].headRows.length), 'the padded count depends on the shape only');
    const run = async (replay: boolean, rows: boolean): Promise<Run> => {
      process.env.SHARELORA_WEBGPU_REPLAY = replay ? '1' : '0';
      const before = replayStats.replayed;
      const m = randomModel(cfg, { seed: 4, task: 'masked-lm' });
      const ft = fullFineTune(m);
      const trainer = new Trainer(m, ft, { lr: 1e-2, seed: 1, schedule: 'constant' });
      try {
        trainer.startReplay();
        for (const b of data) await trainer.step(rows ? b : { inputIds: b.inputIds, attentionMask: b.attentionMask, labels: b.labels });
        trainer.endReplay();
        const params = new Map<string, Float32Array>();
        for (const [n, v] of ft.namedParameters()) params.set(n, (await v.data()) as Float32Array);
        return { losses: trainer.records.map((r) => r.loss), params, replayed: replayStats.replayed - before, refused: {}, poolBytes: 0 };
      } finally {
        trainer.dispose(); m.dispose();
        delete process.env.SHARELORA_WEBGPU_REPLAY;
      }
    };
    const full = await run(false, false);
    const gathered = await run(false, true);
    const replayed = await run(true, true);
    // a key bias's gradient is zero but for rounding (softmax ignores a shift shared by every key), and AdamW turns
    // rounding into steps of ±lr: it is left out of both comparisons (on the H100, session 16, gathered against
    // replayed differed there by 1.0e-5 to 2.0e-5 in one run of three, every other parameter within 1e-5)
    const noKeyBias = (r: Run): Run => ({ ...r, params: new Map([...r.params].filter(([n]) => !n.endsWith('key.bias'))) });
    assertSame(noKeyBias(full), noKeyBias(gathered));
    assert.ok(replayed.replayed >= 3, `only ${replayed.replayed} of 8 steps replayed`);
    assertSame(noKeyBias(gathered), noKeyBias(replayed));
    // what is left out still moves by at most lr a step (AdamW's step is bounded by lr·(1 + decay) with bias correction)
    assertParamsClose(gathered.params, replayed.params, 2 * 1e-2 * data.length);
  });

  it('two fits awaited together record nothing (each would record the other\'s commands) and train as without replay', async (t) => {
    if (skip) return t.skip(skip);
    const d1 = batches(5, 4, 12, 21), d2 = batches(5, 4, 12, 22);
    const [p1, p2] = [await train(false, d1), await train(false, d2)];
    const before = replayStats.replayed;
    process.env.SHARELORA_WEBGPU_REPLAY = '1';
    const [r1, r2] = await Promise.all([train(true, d1), train(true, d2)]);
    assert.equal(replayStats.replayed - before, 0);
    assertSame(p1, r1);
    assertSame(p2, r2);
  });

  it('adapter dropout makes every step different: nothing is replayed, and training is unchanged', async (t) => {
    if (skip) return t.skip(skip);
    const data = batches(6, 4, 12, 3);
    const plain = await train(false, data, { dropout: 0.1 });
    const replayed = await train(true, data, { dropout: 0.1 });
    assert.equal(replayed.replayed, 0);
    assert.ok(Object.keys(replayed.refused).some((k) => k.includes('differ')), `refusals: ${JSON.stringify(replayed.refused)}`);
    assertSame(plain, replayed);
  });
});
