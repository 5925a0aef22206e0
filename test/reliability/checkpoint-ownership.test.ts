/**
 * What a checkpoint save may touch: a `<dir>.prev` the user made is never
 * deleted, a checkpoint folder that is a symbolic link is saved into where it
 * points (the link kept), and a trainer.json without its base fingerprint
 * does not resume silently onto whatever model is given.
 */
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { injectShareLoRA, ShareLoraAdapter } from '../../src/adapters/sharelora.js';
import { CheckpointError } from '../../src/util/errors.js';
import { loadModelFromDir } from '../../src/models/load.js';
import type { Model } from '../../src/models/types.js';
import type { Batch } from '../../src/train/loss.js';
import { Trainer } from '../../src/train/trainer.js';
import { FIXTURES, testBackend } from '../helpers.js';

const row = (s: number) => Array.from({ length: 8 }, (_, t) => (s * 97 + t * 31) % 500 + 3);
const batch = (s: number): Batch => ({ inputIds: [row(s), row(s + 50)], attentionMask: [row(0).map(() => 1), row(0).map(() => 1)], labels: [s % 3, (s + 2) % 3] });

describe('checkpoint saves touch only what they made', { timeout: 60_000 }, () => {
  let model: Model;
  const tmp = mkdtempSync(join(tmpdir(), 'sl-ckpt-own-'));
  const live: ShareLoraAdapter[] = [];
  const fresh = () => {
    const ad = injectShareLoRA(model, { r: 2, targets: ['q'], share: 'A', seed: 3 });
    live.push(ad);
    return new Trainer(model, ad, { lr: 1e-2, seed: 1 });
  };
  afterEach(() => { for (const ad of live.splice(0)) if (ad.modules.length) ad.unload(); });
  before(async () => {
    await testBackend();
    model = loadModelFromDir(join(FIXTURES, 'roberta', 'model'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('a <dir>.prev that is not a checkpoint is never removed, on the first save or any later one', async () => {
    const dir = join(tmp, 'ck-run');
    mkdirSync(`${dir}.prev`);
    writeFileSync(join(`${dir}.prev`, 'important.txt'), 'mine');
    const tr = fresh();
    await tr.step(batch(0));
    // first save: nothing to rotate yet, and the user's folder stays
    await tr.save(dir);
    assert.equal(readFileSync(join(`${dir}.prev`, 'important.txt'), 'utf8'), 'mine');
    // second save would rotate through <dir>.prev: refused, both folders intact
    await tr.step(batch(1));
    await assert.rejects(tr.save(dir), (e: Error) => e instanceof CheckpointError && e.message.startsWith(`${dir}.prev:`) && /not a previous checkpoint/.test(e.message));
    assert.equal(readFileSync(join(`${dir}.prev`, 'important.txt'), 'utf8'), 'mine');
    assert.ok(existsSync(join(dir, 'trainer.json')), 'the existing checkpoint is kept');
    assert.deepEqual(readdirSync(tmp).filter((n) => n.includes('.tmp-')), [], 'no temporary folder left');
    // a link named <dir>.prev is not ours either
    rmSync(`${dir}.prev`, { recursive: true });
    mkdirSync(join(tmp, 'elsewhere'));
    writeFileSync(join(tmp, 'elsewhere', 'x.txt'), 'x');
    symlinkSync(join(tmp, 'elsewhere'), `${dir}.prev`);
    await assert.rejects(tr.save(dir), /symbolic link, not a previous checkpoint/);
    assert.ok(lstatSync(`${dir}.prev`).isSymbolicLink() && existsSync(join(tmp, 'elsewhere', 'x.txt')));
    // with it gone, rotation works and leaves no .prev behind
    rmSync(`${dir}.prev`);
    await tr.save(dir);
    assert.ok(!existsSync(`${dir}.prev`));
    tr.dispose();
  });

  it('a checkpoint folder that is a symbolic link is saved into its target; the link stays and resume follows it', async () => {
    const real = join(tmp, 'disk', 'ck');
    mkdirSync(real, { recursive: true });
    const link = join(tmp, 'ck-link');
    symlinkSync(real, link);
    const tr = fresh();
    await tr.step(batch(0));
    await tr.save(link);
    await tr.step(batch(1));
    await tr.save(link); // the rotation happens beside the target, not by renaming the link
    assert.ok(lstatSync(link).isSymbolicLink(), 'the link is still a link');
    assert.ok(existsSync(join(real, 'trainer.json')), 'the checkpoint is in the folder the link points to');
    const updates = tr.updates;
    tr.dispose();
    (tr.adapter as ShareLoraAdapter).unload();
    const back = await Trainer.resume(link, model);
    live.push(back.adapter as ShareLoraAdapter);
    assert.equal(back.updates, updates);
    back.dispose();
    (back.adapter as ShareLoraAdapter).unload();
    const dangling = join(tmp, 'dangling');
    symlinkSync(join(tmp, 'no-such-folder'), dangling);
    const other = fresh();
    await assert.rejects(other.save(dangling), (e: Error) => e instanceof CheckpointError && /symbolic link to .*no-such-folder, which does not exist/.test(e.message));
    other.dispose();
  });

  it('a trainer.json whose base fingerprint was removed is refused unless allowUnknownBase says so', async () => {
    const dir = join(tmp, 'nobase');
    const tr = fresh();
    await tr.step(batch(0));
    await tr.save(dir);
    tr.dispose();
    (tr.adapter as ShareLoraAdapter).unload();
    const file = join(dir, 'trainer.json');
    const state = JSON.parse(readFileSync(file, 'utf8'));
    assert.ok(state.base, 'every save records the base');
    delete state.base;
    writeFileSync(file, JSON.stringify(state));
    await assert.rejects(Trainer.resume(dir, model), (e: Error) => e instanceof CheckpointError && e.message.startsWith(file) && /records no "base"/.test(e.message) && /allowUnknownBase/.test(e.message));
    assert.ok([...model.linears.values()].every((l) => !l.lora), 'no adapter left on the model');
    await assert.rejects(Trainer.resume(dir, model, { allowUnknownBase: 'yes' as unknown as boolean }), /allowUnknownBase.*true or false/);
    const back = await Trainer.resume(dir, model, { allowUnknownBase: true });
    live.push(back.adapter as ShareLoraAdapter);
    assert.equal(back.updates, 1);
    back.dispose();
  });
});
