/**
 * Backend failures the user's code cannot catch, provoked for real over the
 * wire: an aborted wasm module, a WebGPU validation error (a tensor larger
 * than the device binds), and a lost WebGPU device (device.destroy()), while
 * a cell runs and while the kernel is idle. Each time the kernel must name
 * the problem and the next cell must run on a working backend.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Message } from '../../kernel/wire.js';
import { TestKernel, ofType, streamText, type Exchange } from './client.js';

type Content = Record<string, any>;
const content = (m: Message) => m.content as Content;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function errorOf(x: Exchange): Content {
  assert.equal(content(x.reply).status, 'error', `expected an error, got ${JSON.stringify(content(x.reply))}`);
  const iopub = ofType(x.outputs, 'error');
  assert.equal(iopub.length, 1, 'one error on iopub');
  assert.equal(content(iopub[0]!).ename, content(x.reply).ename);
  return content(x.reply);
}

function resultText(x: Exchange): string {
  assert.equal(content(x.reply).status, 'ok', JSON.stringify(content(x.reply)));
  return content(ofType(x.outputs, 'execute_result')[0]!).data['text/plain'] as string;
}

/** A cell that proves the backend computes: its name, 1 + [1, 1, 1] and a matMul, read back (async: webgpu in Node has no dataSync). */
const HEALTH = 'JSON.stringify([tf.getBackend(), Array.from(await tf.add(tf.ones([3]), 1).data()), (await tf.matMul(tf.ones([8, 8]), tf.ones([8, 8])).data())[0]])';

function startIn(prefix: string, env: NodeJS.ProcessEnv) {
  const cwd = mkdtempSync(join(tmpdir(), prefix));
  return { cwd, kernel: TestKernel.start({ cwd, env }) };
}

describe('kernel on wasm: an aborted WebAssembly module', { timeout: 120_000 }, () => {
  let k: TestKernel;
  let cwd: string;
  before(async () => {
    const s = startIn('sharelora-wasm-', { SHARELORA_BACKEND: 'wasm' });
    cwd = s.cwd;
    k = await s.kernel;
  });
  after(async () => {
    await k.shutdown();
    rmSync(cwd, { recursive: true, force: true });
  });

  it('runs on wasm', async () => {
    assert.equal(resultText(await k.execute(HEALTH)), "'[\"wasm\",[2,2,2],8]'");
  });

  it('survives an unhandled rejection (the wasm module rethrows them from its own process listener)', async () => {
    const first = await k.execute('Promise.reject(new Error("nobody awaits me")); "started"');
    assert.equal(content(first.reply).status, 'ok');
    await sleep(300);
    assert.match(streamText(k.outputsOf(first.reply.parent_header.msg_id!), 'stderr'), /Unhandled promise rejection: .*nobody awaits me/);
    assert.ok(k.alive(), k.log.join(''));
    assert.equal(content((await k.execute('2 + 2')).reply).status, 'ok');
  });

  it('reports a heap exhausted by a batch and starts a fresh wasm module', async () => {
    const t0 = Date.now();
    await k.execute('const before = tf.ones([2]); const a = tf.add(tf.ones([26000, 1]), tf.ones([1, 26000]));');
    // The second 2.7 GB tensor does not fit next to the first in the 4 GB heap: malloc aborts the module.
    const r = await k.execute('const b = tf.add(tf.ones([26000, 1]), tf.ones([1, 26000])); await b.data();');
    const err = errorOf(r);
    assert.equal(err.ename, 'WasmAborted');
    // Aborted() or an out-of-bounds access, depending on where in the module the failed allocation surfaces.
    assert.match(err.evalue, /WebAssembly module died \(RuntimeError: /);
    assert.match(err.evalue, /files saved on disk are untouched/);
    assert.match(err.evalue, /fresh wasm backend.*smaller batch/s);
    assert.equal(resultText(await k.execute(HEALTH)), "'[\"wasm\",[2,2,2],8]'");
    const stale = errorOf(await k.execute('before.dataSync()'));
    assert.match(stale.evalue, /lived on the wasm module that aborted; re-create it/);
    assert.equal(content((await k.execute('before.dispose(); a.dispose(); "disposed"')).reply).status, 'ok');
    console.log(`# aborted wasm reported and replaced in ${Date.now() - t0} ms`);
  });

  it('reports a single tensor over 4 GB (memory access out of bounds) the same way', async () => {
    const r = await k.execute('tf.add(tf.ones([40000, 1]), tf.ones([1, 40000])).dataSync()');
    const err = errorOf(r);
    assert.equal(err.ename, 'WasmAborted');
    assert.match(err.evalue, /RuntimeError: memory access out of bounds/);
    assert.match(err.evalue, /\(the cell itself raised RuntimeError/);
    assert.equal(resultText(await k.execute(HEALTH)), "'[\"wasm\",[2,2,2],8]'");
  });
});

describe('kernel on webgpu: GPU errors and a lost device', { timeout: 180_000 }, () => {
  let k: TestKernel | undefined;
  let cwd: string;
  let why: string | undefined;
  before(async () => {
    const s = startIn('sharelora-webgpu-', { SHARELORA_BACKEND: 'webgpu' });
    cwd = s.cwd;
    k = await s.kernel;
    const { reply } = await k.request('shell', 'kernel_info_request', {});
    if (!/backend webgpu/.test(content(reply).banner)) {
      // The kernel fell back to cpu; its first cell says why.
      const first = await k.execute('1');
      why = `no WebGPU adapter: ${streamText(first.outputs, 'stderr').trim() || content(reply).banner}`;
    }
  });
  after(async () => {
    await k?.shutdown();
    rmSync(cwd, { recursive: true, force: true });
  });

  it('turns a validation error (a tensor larger than the device binds) into the cell\'s error', async (t) => {
    if (why) return t.skip(why);
    const limit = Number(resultText(await k!.execute('(tf.backend() as any).device.limits.maxStorageBufferBindingSize')));
    if (limit / 4 > 2 ** 30) return t.skip(`this device binds ${limit} bytes per buffer; a larger tensor is too big to provoke the error in a test`);
    const r = await k!.execute(`const big = tf.fill([${Math.ceil(limit / 4) + 256}], 1); const s = await tf.sum(big).data(); big.dispose(); s[0]`);
    const err = errorOf(r);
    assert.equal(err.ename, 'GPUValidationError');
    assert.match(err.evalue, /Dawn says: Binding size \(\d+\).*larger than the maximum storage buffer binding size/);
    assert.match(err.evalue, /smaller batch.*tf\.disposeVariables\(\).*restart the kernel/s);
    assert.equal(ofType(r.outputs, 'execute_result').length, 0, 'no garbage result is shown');
    assert.equal(resultText(await k!.execute(HEALTH)), "'[\"webgpu\",[2,2,2],8]'");
  });

  it('reports a device lost during a cell and starts a fresh device for the next cell', async (t) => {
    if (why) return t.skip(why);
    const t0 = Date.now();
    await k!.execute('const w = tf.variable(tf.ones([8, 8])); await tf.matMul(w, w).data();');
    const r = await k!.execute('(tf.backend() as any).device.destroy(); await tf.matMul(w, w).data();');
    const err = errorOf(r);
    assert.equal(err.ename, 'GPUDeviceLost');
    assert.match(err.evalue, /WebGPU device was lost \(destroyed/);
    assert.match(err.evalue, /tensor, model, adapter and optimizer state that lived on it is gone; files saved on disk are untouched/);
    assert.match(err.evalue, /fresh webgpu backend .*Re-run the cells that load the model/s);
    assert.equal(resultText(await k!.execute(HEALTH)), "'[\"webgpu\",[2,2,2],8]'");
    const stale = errorOf(await k!.execute('await w.data()'));
    assert.match(stale.evalue, /lived on the WebGPU device that was lost/);
    console.log(`# lost device reported and replaced in ${Date.now() - t0} ms`);
  });

  it('tells the next cell about a device lost while the kernel was idle', async (t) => {
    if (why) return t.skip(why);
    const armed = await k!.execute('setTimeout(() => (tf.backend() as any).device.destroy(), 100); "armed"');
    assert.equal(content(armed.reply).status, 'ok');
    await sleep(1500);
    const next = await k!.execute(HEALTH);
    assert.match(streamText(next.outputs, 'stderr'), /GPUDeviceLost while no cell was running: The WebGPU device was lost \(destroyed.*fresh webgpu backend/s);
    assert.equal(resultText(next), "'[\"webgpu\",[2,2,2],8]'");
    assert.ok(k!.alive());
  });
});
