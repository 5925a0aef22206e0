/**
 * Checkpoint and resume: an interrupted, saved and resumed fit() reproduces
 * the uninterrupted run bit for bit (cpu); saving is atomic even under
 * SIGKILL; damaged or foreign checkpoints fail with a CheckpointError.
 */
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { AdapterConfigError } from '../../src/adapters/config.js';
import { fullFineTune, FullFineTune } from '../../src/adapters/full.js';
import { injectShareLoRA, ShareLoraAdapter } from '../../src/adapters/sharelora.js';
import { CheckpointError } from '../../src/util/errors.js';
import { loadModelFromDir } from '../../src/models/load.js';
import type { Model } from '../../src/models/types.js';
import type { Batch } from '../../src/train/loss.js';
import { requestStop, TrainingInterrupted } from '../../src/train/stop.js';
import { Trainer, type TrainerOptions } from '../../src/train/trainer.js';
import { FIXTURES, testBackend } from '../helpers.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'save-child.js');
const row = (s: number) => Array.from({ length: 8 }, (_, t) => (s * 97 + t * 31) % 500 + 3);
const batch = (s: number): Batch => ({ inputIds: [row(s), row(s + 50)], attentionMask: [row(0).map(() => 1), row(0).map((_, t) => (t < 6 ? 1 : 0))], labels: [s % 3, (s + 2) % 3] });
// 5 batches with accumulation 2: every epoch ends on a half-full accumulation, flushed
const fitOpts = { train: [0, 1, 2, 3, 4].map(batch), eval: [batch(9)], evalEvery: 2, epochs: 3 };
const trainerOpts: TrainerOptions = { lr: 2e-2, schedule: 'linear', warmupSteps: 2, gradAccumulation: 2, maxGradNorm: 1, weightDecay: 0.01, seed: 5 };

/** everything a run produces that must match exactly (not wall-clock seconds) */
async function outcome(tr: Trainer) {
  const values = async (m: Map<string, tf.Tensor>) => Promise.all([...m].sort(([a], [b]) => a.localeCompare(b)).map(async ([n, v]) => [n, Array.from(await v.data())]));
  return {
    history: tr.records.map(({ seconds: _, ...r }) => r),
    params: await values(tr.adapter.namedParameters()),
    m: await values(tr.optimizer.m), v: await values(tr.optimizer.v),
    counters: { updates: tr.updates, micro: tr.microStep, epoch: tr.epoch, cursor: tr.cursor, dropout: tr.adapter.dropoutCounter },
  };
}

describe('checkpoint and resume', () => {
  let model: Model;
  const tmp = mkdtempSync(join(tmpdir(), 'sl-ckpt-'));
  // a failed test must not leave its adapter on the shared model for the next one
  const live: ShareLoraAdapter[] = [];
  const fresh = (opts: TrainerOptions = {}) => {
    const ad = injectShareLoRA(model, { r: 4, targets: ['q', 'v'], share: 'A', dropout: 0.1, seed: 11 });
    live.push(ad);
    return new Trainer(model, ad, { ...trainerOpts, ...opts });
  };
  const resume = async (dir: string): Promise<Trainer> => {
    const tr = await Trainer.resume(dir, model);
    live.push(tr.adapter as ShareLoraAdapter);
    return tr;
  };
  const finish = (tr: Trainer) => { tr.dispose(); (tr.adapter as ShareLoraAdapter).unload(); };
  afterEach(() => { for (const ad of live.splice(0)) if (ad.modules.length) ad.unload(); });
  before(async () => {
    await testBackend();
    model = loadModelFromDir(join(FIXTURES, 'roberta', 'model'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('fit() interrupted, saved and resumed reproduces the uninterrupted run bit for bit', async () => {
    const straight = fresh();
    await straight.fit(fitOpts);
    const want = await outcome(straight);
    finish(straight);
    assert.equal(want.history.length, 9, '3 updates per epoch');
    assert.ok(want.history.every((r, i) => r.step === i + 1 && Number.isFinite(r.loss)));

    const dir = join(tmp, 'fit');
    const first = fresh({ callbacks: [{ onStep: (r) => { if (r.step === 4) requestStop(); } }] });
    await assert.rejects(first.fit(fitOpts), TrainingInterrupted);
    assert.deepEqual([first.updates, first.epoch, first.cursor], [4, 1, 2], 'stopped mid-epoch');
    await first.save(dir);
    finish(first);
    assert.deepEqual(readdirSync(dir).sort(), ['adapter', 'optimizer.safetensors', 'trainer.json']);

    const resumed = await resume(dir);
    await resumed.fit(fitOpts);
    assert.deepEqual(await outcome(resumed), want);
    finish(resumed);
  });

  it('a save between the micro-batches of one accumulation resumes exactly', async () => {
    const run = async (cut: boolean) => {
      let tr = fresh({ gradAccumulation: 3, totalSteps: 10 });
      for (let i = 0; i < 5; i++) {
        if (cut && i === 4) {
          await tr.save(join(tmp, 'accum'));
          finish(tr);
          tr = await resume(join(tmp, 'accum'));
          assert.equal(tr.accumCount, 1, 'one micro-batch was pending');
        }
        await tr.step(batch(i));
      }
      const o = await outcome(tr);
      finish(tr);
      return o;
    };
    assert.deepEqual(await run(true), await run(false));
  });

  it('state() and loadState() carry a run, mid-accumulation, to another trainer exactly; a state of another adapter is refused', async () => {
    const opts = { gradAccumulation: 3, totalSteps: 10 };
    const run = async (cut: boolean) => {
      let tr = fresh(opts);
      for (let i = 0; i < 5; i++) {
        if (cut && i === 4) {
          const state = await tr.state();
          tr.dispose();
          tr = new Trainer(model, tr.adapter, { ...trainerOpts, ...opts });
          await tr.loadState(state);
          assert.equal(tr.accumCount, 1, 'one micro-batch was pending');
        }
        await tr.step(batch(i));
      }
      const o = await outcome(tr);
      if (cut) {
        const state = await tr.state();
        state.accum = new Map([['not.a.parameter', { shape: [1], data: new Float32Array(1) }]]);
        await assert.rejects(tr.loadState(state), /trainer\.loadState: accum has "not\.a\.parameter" \[1\], which is no trainable parameter/);
        assert.deepEqual(await outcome(tr), o, 'a refused state changes nothing');
      }
      finish(tr);
      return o;
    };
    assert.deepEqual(await run(true), await run(false));
  });

  it('save() called while fit() is mid-step waits for the step and saves a state that resumes exactly', async () => {
    const opts = { ...fitOpts, epochs: 1 };
    const straight = fresh();
    await straight.fit(opts);
    const want = await outcome(straight);
    finish(straight);

    const tr = fresh();
    const fitting = tr.fit(opts); // not awaited: the first step is in flight
    await tr.save(join(tmp, 'midfit'));
    await fitting;
    finish(tr);
    // the save ran between two steps of the fit: after the first, before the last
    const saved = await resume(join(tmp, 'midfit'));
    assert.ok(saved.microStep >= 1 && saved.microStep < opts.train.length, `saved mid-fit after a whole step (micro-step ${saved.microStep})`);
    await saved.fit(opts);
    assert.deepEqual(await outcome(saved), want);
    finish(saved);
  });

  it('a trainable other than ShareLoRA (full fine-tuning) is saved as parameters and resumed into the one given', async () => {
    const run = async (cut: boolean) => {
      const m = loadModelFromDir(join(FIXTURES, 'roberta', 'model'));
      const only = { include: /classifier|layer\.2\.output/ };
      let tr = new Trainer(m, fullFineTune(m, only), { lr: 1e-2, seed: 3 });
      for (let i = 0; i < 3; i++) {
        if (cut && i === 2) {
          await tr.save(join(tmp, 'full'));
          tr.dispose();
          (tr.adapter as FullFineTune).freeze();
          await assert.rejects(Trainer.resume(join(tmp, 'full'), m), /pass that trainable as opts.trainable/);
          const into = fullFineTune(m, only);
          // zeroed, so only the checkpoint's values can make the runs agree
          for (const v of into.namedParameters().values()) tf.tidy(() => v.assign(tf.zerosLike(v)));
          tr = await Trainer.resume(join(tmp, 'full'), m, { trainable: into });
        }
        await tr.step(batch(i));
      }
      const o = await outcome(tr);
      tr.dispose();
      m.dispose();
      return o;
    };
    assert.deepEqual(await run(true), await run(false));
  });

  it('a process SIGKILLed while saving leaves a checkpoint that resumes', async () => {
    const dir = join(tmp, 'killed');
    let midSave = 0;
    // two rounds, and up to two more if neither kill happened to land inside a save
    for (const [round, delay] of [4, 12, 1, 25].entries()) {
      if (round >= 2 && midSave > 0) break;
      const child = spawn(process.execPath, [CHILD], { env: { ...process.env, SHARELORA_SAVE_CHILD: dir }, stdio: ['ignore', 'pipe', 'inherit'] });
      let done = -1;
      let saving = 0;
      const exit = new Promise<NodeJS.Signals | null>((res) => child.on('exit', (_code, sig) => res(sig)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line.startsWith('saved ')) done = Number(line.slice(6));
        // kill a few ms into the third save, which writes over a complete checkpoint
        if (line === 'saving' && ++saving === 3) setTimeout(() => child.kill('SIGKILL'), delay);
      });
      assert.equal(await exit, 'SIGKILL', 'the child was killed, not finished');
      if (readdirSync(tmp).some((n) => n.startsWith('killed.tmp-') || n === 'killed.prev')) midSave++;
      // whatever the kill interrupted, a <dir>.prev left behind is a whole checkpoint (a half-deleted one would make every
      // later save refuse it as foreign), and so is <dir> where it exists
      for (const d of [dir, `${dir}.prev`]) if (existsSync(d)) assert.ok(existsSync(join(d, 'trainer.json')), `${d} is incomplete: ${readdirSync(d)}`);
      const tr = await resume(dir);
      assert.ok(tr.updates >= done, `resumed at update ${tr.updates}, but update ${done} had been saved`);
      assert.equal(tr.records.length, tr.updates);
      finish(tr);
    }
    assert.ok(midSave > 0, 'no kill landed inside a save, so this proved nothing');
    // the next save clears what killed saves left behind
    const tr = await resume(dir);
    await tr.save(dir);
    finish(tr);
    assert.deepEqual(readdirSync(tmp).filter((n) => n.startsWith('killed')), ['killed']);
  });

  it('killed between moving the old checkpoint aside and renaming the new one in: resume takes <dir>.prev', async () => {
    const dir = join(tmp, 'swap');
    const tr = fresh({ totalSteps: 10 });
    await tr.step(batch(0));
    await tr.step(batch(1));
    await tr.save(dir);
    const want = await outcome(tr);
    finish(tr);
    renameSync(dir, `${dir}.prev`);
    const back = await resume(dir);
    assert.deepEqual(await outcome(back), want);
    await back.save(dir);
    finish(back);
    assert.ok(existsSync(join(dir, 'trainer.json')) && !existsSync(`${dir}.prev`));
  });

  it('damaged, foreign or mismatched checkpoints fail with a typed error and leave no adapter behind', async () => {
    const dir = join(tmp, 'bad');
    const tr = fresh({ totalSteps: 10 });
    await tr.step(batch(0));
    await tr.step(batch(1));
    await tr.save(dir);
    finish(tr);
    const tensors = tf.memory().numTensors;
    const state = readFileSync(join(dir, 'trainer.json'), 'utf8');
    const broken = async (edit: (s: Record<string, any>) => void, expect: RegExp) => {
      const s = JSON.parse(state);
      edit(s);
      writeFileSync(join(dir, 'trainer.json'), JSON.stringify(s));
      await assert.rejects(Trainer.resume(dir, model), (e: Error) => e instanceof CheckpointError && expect.test(e.message) && e.message.startsWith(dir));
      assert.equal(tf.memory().numTensors, tensors);
    };
    await broken((s) => { s.optimizer.step = -1; }, /"optimizer.step" must be a non-negative integer/);
    await broken((s) => { s.format = 'something-else'; }, /is not a trainer checkpoint/);
    await broken((s) => { s.options.schedule = 'exponential'; }, /"options.schedule" must be one of/);
    await broken((s) => { s.records[0].loss = 'low'; }, /"records\[0\].loss" must be a number/);
    await broken((s) => { s.trainer.accumCount = 1; }, /disagree with trainer.accumCount/);
    writeFileSync(join(dir, 'trainer.json'), state);
    await assert.rejects(Trainer.resume(join(tmp, 'nothing'), model), (e: Error) => e instanceof CheckpointError && /no checkpoint here/.test(e.message));
    const llama = loadModelFromDir(join(FIXTURES, 'llama', 'model'));
    await assert.rejects(Trainer.resume(dir, llama), (e: Error) => e instanceof AdapterConfigError || e instanceof CheckpointError);
    assert.ok([...llama.linears.values()].every((l) => !l.lora), 'no adapter left on the other model');
    llama.dispose();
    const mine = join(tmp, 'mine');
    mkdirSync(mine);
    writeFileSync(join(mine, 'notes.txt'), 'keep me');
    const other = fresh();
    await assert.rejects(other.save(mine), (e: Error) => e instanceof CheckpointError && /not a trainer checkpoint; not replacing it/.test(e.message));
    finish(other);
    assert.equal(readFileSync(join(mine, 'notes.txt'), 'utf8'), 'keep me');
  });
});
