/**
 * Code that misbehaves beyond one cell: loops that never yield to the event
 * loop (so neither SIGINT's handler nor any timer runs), process.exit(), and
 * errors raised after their cell has finished. The kernel must answer, stop
 * what can be stopped, say where late errors came from, and keep running.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Message } from '../../kernel/wire.js';
import { TestKernel, ofType, streamText } from './client.js';

type Content = Record<string, any>;
const content = (m: Message) => m.content as Content;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const GRACE_MS = 500;

describe('runaway cells', { timeout: 180_000 }, () => {
  let k: TestKernel;
  let cwd: string;
  /** the last test leaves the kernel stuck for good */
  let stuckForGood = false;

  before(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'sharelora-runaway-'));
    k = await TestKernel.start({ cwd, env: { SHARELORA_INTERRUPT_GRACE_MS: String(GRACE_MS) } });
  });
  after(async () => {
    if (stuckForGood) k.proc.kill('SIGKILL');
    const code = await k.shutdown();
    rmSync(cwd, { recursive: true, force: true });
    if (!stuckForGood) assert.equal(code, 0, `kernel exit code after shutdown_request\n${k.log.join('')}`);
  });

  const result = (r: { outputs: Message[] }) => content(ofType(r.outputs, 'execute_result')[0]!).data['text/plain'];

  /**
   * Starts `code` and interrupts it on the control channel once it has run a
   * while, as a user clicks again when nothing happens: an interrupt that
   * arrives while the kernel still compiles the cell is not meant for the
   * code that starts after it.
   */
  async function interruptOnControl(code: string) {
    const cell = k.begin('shell', k.executeMessage(code));
    await sleep(1000);
    const replyMs: number[] = [];
    for (let tries = 0; tries < 3; tries++) {
      const sentAt = Date.now();
      const interrupt = k.begin('control', k.message('interrupt_request', {}), 10_000);
      // Its idle status comes only once the main thread is free again.
      interrupt.done.catch(() => {});
      assert.equal(content(await interrupt.replied).status, 'ok');
      replyMs.push(Date.now() - sentAt);
      const r = await Promise.race([cell.done, sleep(GRACE_MS + 8000).then(() => undefined)]);
      if (r) return { ...r, replyMs, tries: tries + 1 };
    }
    throw new Error(`three interrupts did not stop ${code}\n${k.log.join('')}`);
  }

  it('answers interrupt_request at once and stops loops that never yield', async (t) => {
    assert.equal(content((await k.execute('let spins = 0; let last = 0')).reply).status, 'ok');
    for (const code of [
      'for (;;) { spins++; await 0 }',
      // a promise chain that re-queues itself: memory grows fast until it is stopped
      'const again = (): Promise<unknown> => Promise.resolve(spins++).then(again); await again()',
      // synchronous, but after an await: outside the vm call that breakOnSigint guards
      'await null; while (true) { spins++ }',
    ]) {
      const r = await interruptOnControl(`last = spins; ${code}`);
      assert.ok(Math.max(...r.replyMs) < 1000, `interrupt_reply took ${r.replyMs.join(', ')} ms while the cell held the main thread`);
      assert.equal(content(r.reply).status, 'error', code);
      assert.equal(content(r.reply).ename, 'Interrupted', code);
      assert.match(content(r.reply).evalue, /never yielded to the event loop/, code);
      if (r.tries > 1) t.diagnostic(`${code}: stopped at interrupt ${r.tries}`);
      const next = await k.execute('spins > last');
      assert.equal(result(next), 'true', `${code}: the loop ran, and the kernel runs cells again`);
    }
    // Synchronous code in the cell body: SIGINT breaks tslab's vm call, without force.
    const plain = await interruptOnControl('last = spins; while (true) { spins++ }');
    assert.equal(content(plain.reply).ename, 'Interrupted');
    assert.equal(content(plain.reply).evalue, 'the cell was interrupted');
    assert.equal(result(await k.execute('spins > last')), 'true');
    assert.ok(k.alive());
  });

  it('stops a chain a finished cell left spinning, and tells the next cell', async () => {
    const r = await interruptOnControl('const spin = (): Promise<unknown> => Promise.resolve().then(spin); spin(); "started"');
    assert.equal(content(r.reply).status, 'ok');
    // The cell may have finished before the kernel heard of the stop; the note then waits for the next cell.
    await sleep(500);
    const next = await k.execute('"after"');
    assert.equal(result(next), "'after'");
    const told = streamText(r.outputs, 'stderr') + streamText(next.outputs, 'stderr');
    assert.match(told, /an interrupt stopped code that a cell had left running .*at spin \(evalmachine/, `stderr: ${told}\nkernel log:\n${k.log.join('')}`);
  });

  it('turns process.exit() into an error of the cell, even in a timer, and keeps running', async () => {
    const r = await k.execute('console.log("before"); process.exit(3); console.log("after")');
    assert.equal(content(r.reply).status, 'error');
    assert.equal(content(r.reply).ename, 'ProcessExit');
    assert.match(content(r.reply).evalue, /process\.exit\(3\) would end the kernel/);
    assert.equal(streamText(r.outputs, 'stdout'), 'before\n');
    const timer = await k.execute('setTimeout(() => process.exit(), 20); "armed"');
    await sleep(300);
    const next = await k.execute('1 + 1');
    assert.equal(result(next), '2');
    assert.match(streamText(next.outputs, 'stderr'), new RegExp(`Uncaught exception from cell \\[${content(timer.reply).execution_count}\\].*\\n.*ProcessExit`));
    assert.ok(k.alive());
  });

  it('shows errors raised after their cell finished in the next cell, naming that cell, and in the log', async () => {
    const first = await k.execute([
      'setTimeout(() => { throw new RangeError("thrown 50 ms later") }, 50);',
      'setTimeout(() => { Promise.reject(new TypeError("rejected 80 ms later")) }, 80);',
      '"scheduled"',
    ].join('\n'));
    const origin = content(first.reply).execution_count;
    assert.equal(content(first.reply).status, 'ok');
    await sleep(400);
    const next = await k.execute('"next"');
    const stderr = streamText(next.outputs, 'stderr');
    assert.match(stderr, new RegExp(`Uncaught exception from cell \\[${origin}\\], after that cell had finished:\\n.*RangeError.*thrown 50 ms later`));
    assert.match(stderr, new RegExp(`Unhandled promise rejection from cell \\[${origin}\\], after that cell had finished:\\n.*TypeError.*rejected 80 ms later`));
    assert.equal(streamText(k.outputsOf(first.reply.parent_header.msg_id!), 'stderr'), '', 'nothing goes to the finished request, which front-ends drop');
    assert.match(k.log.join(''), /Uncaught exception from cell \[\d+\].*\n.*thrown 50 ms later/);
    assert.equal(result(next), "'next'");
  });

  // Last: the kernel cannot recover from this one.
  it('refuses to terminate a loop inside a timer (Node would abort) and says so, still answering', async () => {
    const r = await k.execute('setTimeout(() => { for (;;) {} }, 200); "armed"');
    assert.equal(content(r.reply).status, 'ok');
    stuckForGood = true;
    await sleep(700);
    const interrupt = k.begin('control', k.message('interrupt_request', {}), 10_000);
    interrupt.done.catch(() => {}); // no idle status ever comes: the main thread stays stuck
    assert.equal(content(await interrupt.replied).status, 'ok');
    for (const until = Date.now() + GRACE_MS + 30_000; !/cannot stop the code/.test(k.log.join('')) && Date.now() < until;) await sleep(200);
    assert.match(k.log.join(''), /interrupt: cannot stop the code that holds the main thread: .*\(at .*listOnTimeout/);
    await sleep(500);
    assert.ok(k.alive(), 'the kernel did not abort');
    const again = k.begin('control', k.message('interrupt_request', {}), 10_000);
    again.done.catch(() => {});
    assert.equal(content(await again.replied).status, 'ok', 'the control thread still answers');
  });
});
