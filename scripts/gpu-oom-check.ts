/**
 * A real GPU out-of-memory inside a "cell", through the kernel's BackendGuard
 * (kernel/backend-guard.ts), on a GPU with real memory (lavapipe backs
 * buffers with host RAM, so the kernel test can only provoke a validation
 * error there). Run on the GPU machine:
 *   node dist/scripts/gpu-oom-check.js
 * Cell 1 allocates 1 GiB tensors until the device runs out; the guard must
 * turn Dawn's asynchronous error into the cell's error. Cell 2 frees them and
 * must run normally on the same device.
 */
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../src/backend/index.js';
import { BackendGuard } from '../kernel/backend-guard.js';

const info = await useBackend('webgpu');
const dev = (tf.backend() as unknown as { device: { limits: Record<string, number> } }).device;
console.log(JSON.stringify({ backend: info, maxBufferSize: dev.limits.maxBufferSize, maxStorageBufferBindingSize: dev.limits.maxStorageBufferBindingSize }));
const guard = new BackendGuard();
await guard.start();

await guard.beforeCell();
const held: tf.Tensor[] = [];
let thrown: string | undefined;
const t0 = performance.now();
try {
  // tensors as large as one binding may be (at most 1 GiB), until 200 GiB were asked for
  const elems = Math.floor(Math.min(2 ** 30, dev.limits.maxStorageBufferBindingSize) / 4 / 2 ** 20) * 2 ** 20;
  for (let i = 0; i * elems * 4 < 200 * 2 ** 30; i++) held.push(tf.fill([elems], i));
} catch (e) {
  thrown = String((e as Error).message).split('\n')[0];
}
const err1 = await guard.afterCell(thrown ? { ok: false, error: { ename: 'Error', evalue: thrown, traceback: [] } } : { ok: true });
console.log(JSON.stringify({ cell: 1, allocated: held.length, seconds: +((performance.now() - t0) / 1000).toFixed(1), thrown, ename: err1?.ename, evalue: err1?.evalue }));
tf.dispose(held);

await guard.beforeCell();
const y = tf.matMul(tf.ones([256, 256]), tf.ones([256, 256]));
const v = (await y.data())[0];
y.dispose();
const err2 = await guard.afterCell({ ok: true });
console.log(JSON.stringify({ cell: 2, value: v, expected: 256, ename: err2?.ename ?? null, backend: tf.getBackend() }));
const ok = !!err1 && /OutOfMemory/.test(err1.ename) && !err2 && v === 256;
console.log(ok ? 'OK: the out-of-memory became the cell\'s error and the next cell ran' : 'FAILED');
process.exit(ok ? 0 : 1);
