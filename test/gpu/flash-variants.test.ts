/**
 * The flash attention forward's other shapes of its key walk (bench/NOTES.md entry 29), each in a child process since
 * the switches are read once a process: one thread a row (SHARELORA_WEBGPU_FLASH_PARTS=1), four, and the opt-in block
 * rescale with two and four; each must pass flash-attention.test.js (the reference on the cpu backend) and
 * flash-backward.test.js (whose backward rebuilds the softmax from the forward's LSE).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { webgpuUnavailable } from './helpers.js';
import { useBackend } from '../../src/backend/index.js';

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));

describe('flash attention forward variants', () => {
  for (const env of [
    { SHARELORA_WEBGPU_FLASH_PARTS: '1' },
    { SHARELORA_WEBGPU_FLASH_PARTS: '4' },
    { SHARELORA_WEBGPU_FLASH_PARTS: '2', SHARELORA_WEBGPU_FLASH_BLOCK: '1' },
    { SHARELORA_WEBGPU_FLASH_PARTS: '4', SHARELORA_WEBGPU_FLASH_BLOCK: '1' },
  ]) {
    it(JSON.stringify(env), { timeout: 600_000 }, async (t) => {
      const skip = await webgpuUnavailable();
      if (skip) return t.skip(skip);
      // lavapipe builds a workgroup barrier's shader as an LLVM coroutine, and LLVM 15's CoroSplit pass spends minutes on
      // the block rescale's (seen in session 22: over 300 s for one test file that takes 6 s with the default kernel, the
      // compile thread in llvm::coro::buildCoroutineFrame); the opt-in block form is tested on GPUs (gpu-all's tests part)
      const { device } = await useBackend('webgpu');
      if (env.SHARELORA_WEBGPU_FLASH_BLOCK && /llvmpipe/i.test(device ?? '')) return t.skip(`the block rescale's shader takes lavapipe minutes to compile (${device})`);
      // (without NODE_TEST_CONTEXT: node:test in a child it sets refuses to run files, as a recursive run)
      const { NODE_TEST_CONTEXT: _, ...parent } = process.env;
      // spawnSync blocks the event loop, so the test's own timeout cannot stop a child that hangs: its own limit can (a
      // child that took 7 s alone spun for 17 minutes once, in a run sharing two cores with other lavapipe processes)
      const r = spawnSync(process.execPath, ['--test', here('./flash-attention.test.js'), here('./flash-backward.test.js')], { encoding: 'utf8', env: { ...parent, ...env }, timeout: 480_000 });
      const out = `${r.stdout}\n${r.stderr}`;
      assert.ok(!r.error, `the child failed to finish: ${r.error?.message} (signal ${r.signal})\n${out.slice(-3000)}`);
      assert.equal(r.status, 0, out.slice(-3000));
      assert.match(out, /^# fail 0$/m);
      assert.doesNotMatch(out, /^# pass 0$/m);
    });
  }
});
