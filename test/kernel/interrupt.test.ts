/**
 * Interrupts, sent as jupyter_client sends them (SIGINT to the kernel's
 * process group) or as interrupt_request on the control channel.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Message } from '../../kernel/wire.js';
import { TestKernel, ofType, streamText } from './client.js';
import { REPO_ROOT } from './env.js';

type Content = Record<string, any>;
const content = (m: Message) => m.content as Content;
const GPT2 = join(REPO_ROOT, 'test', 'fixtures', 'hf-reference', 'gpt2', 'model');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `code`, interrupts once its outputs satisfy `ready`, and returns the exchange. */
async function interruptWhen(k: TestKernel, code: string, ready: (outputs: Message[]) => boolean, how: 'signal' | 'message' = 'signal') {
  const { msgId, done } = k.begin('shell', k.executeMessage(code));
  for (const t = Date.now(); Date.now() - t < 60_000 && !ready(k.outputsOf(msgId)); ) await sleep(50);
  const t0 = Date.now();
  if (how === 'signal') k.signal('SIGINT');
  else await k.request('control', 'interrupt_request', {});
  const result = await done;
  return { ...result, replyAfterMs: Date.now() - t0 };
}

describe('interrupting the sharelora kernel', { timeout: 180_000 }, () => {
  let k: TestKernel;
  let cwd: string;

  before(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'sharelora-interrupt-'));
    k = await TestKernel.start({ cwd });
  });
  after(async () => {
    await k.shutdown();
    rmSync(cwd, { recursive: true, force: true });
  });

  it('stops a real training loop between steps and leaves the model usable', async () => {
    const setup = await k.execute([
      `const model = await loadModel(${JSON.stringify(GPT2)});`,
      "const adapter = injectShareLoRA(model, { r: 4, targets: ['q', 'v'], share: 'A' });",
      'const batch = { inputIds: [[1, 2, 3, 4, 5, 6, 7, 8]], labels: [[1, 2, 3, 4, 5, 6, 7, 8]] };',
      'const trainer = new Trainer(model, adapter, { lr: 1e-3 });',
    ].join('\n'));
    assert.equal(content(setup.reply).status, 'ok', JSON.stringify(content(setup.reply)));

    const r = await interruptWhen(k, 'await trainer.fit({ train: [batch], epochs: 100000 })',
      (outs) => ofType(outs, 'update_display_data').length >= 3);
    assert.equal(content(r.reply).status, 'error');
    assert.equal(content(r.reply).ename, 'TrainingInterrupted');
    assert.ok(r.replyAfterMs < 2000, `the loop stopped ${r.replyAfterMs} ms after the interrupt`);
    const bars = ofType(r.outputs, 'update_display_data').map((m) => content(m).data['text/plain'] as string).filter((t) => t?.includes('step'));
    assert.match(bars[bars.length - 1]!, /interrupted after \d+ steps/);

    const check = await k.execute('const steps = trainer.updates; const ev = await trainer.evaluate([batch]); [steps > 0, Number.isFinite(ev.loss), trainer.history.numRows() === steps]');
    assert.equal(content(ofType(check.outputs, 'execute_result')[0]!).data['text/plain'], '[ true, true, true ]');
    const resumed = await k.execute('await trainer.fit({ train: [batch], epochs: trainer.epoch + 1 }); trainer.updates > steps');
    assert.equal(content(resumed.reply).status, 'ok', JSON.stringify(content(resumed.reply)));
  });

  it('detaches an awaited cell that ignores the stop, and nothing it prints reaches later cells', async () => {
    const code = 'setInterval(() => console.log("tick from the past"), 20); console.log("running"); await new Promise(() => {})';
    const r = await interruptWhen(k, code, (outs) => streamText(outs, 'stdout').includes('running'));
    assert.equal(content(r.reply).status, 'error');
    assert.equal(content(r.reply).ename, 'Interrupted');
    assert.match(content(r.reply).evalue, /detached/);
    const later = await k.execute('await new Promise((r) => setTimeout(r, 300)); console.log("fresh")');
    assert.equal(streamText(later.outputs, 'stdout'), 'fresh\n');
    assert.equal(content(later.reply).status, 'ok');
  });

  it('breaks a synchronous infinite loop', async () => {
    // Output of a cell stuck in synchronous code cannot leave the process, but execute_input was sent before it started.
    let seen = 0;
    const r = await interruptWhen(k, 'console.log("spinning"); while (true) {}', (outs) => (ofType(outs, 'execute_input').length ? ++seen > 6 : false));
    assert.equal(streamText(r.outputs, 'stdout'), 'spinning\n');
    assert.equal(content(r.reply).ename, 'Interrupted');
    assert.ok(k.alive());
    assert.equal(content((await k.execute('1')).reply).status, 'ok');
  });

  it('accepts interrupt_request on the control channel', async () => {
    const r = await interruptWhen(k, 'await trainer.fit({ train: [batch], epochs: trainer.epoch + 100000 })',
      (outs) => ofType(outs, 'update_display_data').length >= 2, 'message');
    assert.equal(content(r.reply).ename, 'TrainingInterrupted');
  });
  it('detaches a training loop on a second interrupt; it stops before the next cell runs and stays silent there', async () => {
    // Steps that hold the event loop for 150 ms (a synchronous callback): the two requests of the burst below arrive
    // while it is held and are read in one turn, so the loop cannot reach its stop check between them (with steps of
    // a few ms it sometimes did, and the first request alone ended the cell with TrainingInterrupted).
    const made = await k.execute("const held = new Trainer(model, adapter, { lr: 1e-3, callbacks: [{ onStep: () => { const t = Date.now(); while (Date.now() - t < 150); } }] });");
    assert.equal(content(made.reply).status, 'ok', JSON.stringify(content(made.reply)));
    const { msgId, done } = k.begin('shell', k.executeMessage('await held.fit({ train: [batch], epochs: 100000 })'));
    while (ofType(k.outputsOf(msgId), 'update_display_data').length < 2) await sleep(50);
    // Two requests in one burst: the second detaches the cell before the loop reaches its next step.
    const first = k.request('control', 'interrupt_request', {});
    const second = k.request('control', 'interrupt_request', {});
    await Promise.all([first, second]);
    const r = await done;
    assert.equal(content(r.reply).ename, 'Interrupted');
    assert.match(content(r.reply).evalue, /detached/);
    const next = await k.execute('const u = held.updates; await new Promise((r) => setTimeout(r, 500)); held.updates === u');
    assert.equal(content(ofType(next.outputs, 'execute_result')[0]!).data['text/plain'], 'true', 'no training happens behind the next cell');
    assert.deepEqual(next.outputs.map((m) => m.header.msg_type), ['execute_input', 'execute_result']);
  });
  it('stops a training loop started without await while the kernel is idle', async () => {
    const started = await k.execute('const running = trainer.fit({ train: [batch], epochs: trainer.epoch + 100000 }); running.catch(() => {}); "started"');
    assert.equal(content(started.reply).status, 'ok');
    await sleep(500);
    k.signal('SIGINT');
    await sleep(300);
    const next = await k.execute('const v = trainer.updates; await new Promise((r) => setTimeout(r, 400)); trainer.updates === v');
    assert.equal(content(ofType(next.outputs, 'execute_result')[0]!).data['text/plain'], 'true');
  });
});
