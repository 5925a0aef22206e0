/**
 * A kernel whose main thread a cell holds (`while (true) {}`) still shuts
 * down: shutdown_request gets its reply at once and the process exits, and
 * SIGTERM ends it within seconds (both once went unanswered for 20 s and more,
 * until Jupyter's SIGKILL).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestKernel } from './client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const within = <T>(p: Promise<T>, ms: number): Promise<T | 'late'> => Promise.race([p, sleep(ms).then(() => 'late' as const)]);

async function stuckKernel(t: { after(fn: () => Promise<void>): void }): Promise<{ k: TestKernel; exited: Promise<number | null> }> {
  const cwd = mkdtempSync(join(tmpdir(), 'sharelora-stuck-'));
  const k = await TestKernel.start({ cwd });
  const exited = new Promise<number | null>((r) => (k.alive() ? k.proc.once('exit', (code) => r(code)) : r(k.proc.exitCode)));
  t.after(async () => {
    if (k.alive()) k.proc.kill('SIGKILL');
    await k.shutdown(); // closes the test's sockets
    rmSync(cwd, { recursive: true, force: true });
  });
  const { msgId } = k.begin('shell', k.executeMessage('while (true) {}'));
  for (const until = Date.now() + 30_000; !k.outputsOf(msgId).some((m) => m.header.msg_type === 'execute_input'); await sleep(50)) {
    if (Date.now() > until) throw new Error(`the cell did not start\n${k.log.join('')}`);
  }
  await sleep(500); // well inside the loop
  return { k, exited };
}

test('shutdown_request during while (true) {} is answered and the kernel exits', { timeout: 120_000 }, async (t) => {
  const { k, exited } = await stuckKernel(t);
  const { replied } = k.begin('control', k.message('shutdown_request', { restart: false }));
  const reply = await within(replied, 3000);
  assert.notEqual(reply, 'late', `no shutdown_reply within 3 s\n${k.log.join('')}`);
  assert.deepEqual((reply as { content: unknown }).content, { status: 'ok', restart: false });
  const t0 = Date.now();
  const code = await within(exited, 10_000);
  assert.notEqual(code, 'late', `still running 10 s after shutdown_request\n${k.log.join('')}`);
  t.diagnostic(`exited ${Date.now() - t0} ms after the reply, code ${code}`);
});

test('SIGTERM during while (true) {} ends the kernel within seconds', { timeout: 120_000 }, async (t) => {
  const { k, exited } = await stuckKernel(t);
  const t0 = Date.now();
  k.proc.kill('SIGTERM');
  const code = await within(exited, 10_000);
  assert.notEqual(code, 'late', `still running 10 s after SIGTERM\n${k.log.join('')}`);
  t.diagnostic(`exited ${Date.now() - t0} ms after SIGTERM, code ${code}`);
});
