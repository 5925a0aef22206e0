/**
 * The jupyter_kernel_test suite (test/kernel/conformance.py) against the
 * kernel, from a folder without node_modules, as CI and users run it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT, SYSTEM_PYTHON, installKernel, missingPython, tempDir } from './env.js';

const missing = missingPython(['jupyter_kernel_test', 'jupyter_client']);

test('jupyter_kernel_test passes every applicable test', { skip: missing, timeout: 240_000 }, async (t) => {
  const jupyterPath = tempDir(t, 'sharelora-jp-');
  const cwd = tempDir(t, 'sharelora-cwd-');
  installKernel(jupyterPath);
  const py = spawn(SYSTEM_PYTHON, [join(REPO_ROOT, 'test', 'kernel', 'conformance.py')], {
    cwd,
    // PNG rendering is checked by protocol.test.ts; here it would only add a browser launch.
    env: { ...process.env, JUPYTER_PATH: jupyterPath, JUPYTER_RUNTIME_DIR: cwd, SHARELORA_BACKEND: 'cpu', SHARELORA_PLOT_PNG: '0' },
  });
  let out = '';
  py.stdout.on('data', (d) => { out += d; });
  py.stderr.on('data', (d) => { out += d; });
  const code = await new Promise<number | null>((r) => py.on('close', r));
  assert.equal(code, 0, out);
  // Only the pager test may skip: this kernel has no pager payloads.
  const skipped = [...out.matchAll(/^(test_\w+) .*\.\.\. skipped/gm)].map((m) => m[1]);
  assert.deepEqual(skipped, ['test_pager'], out);
  assert.match(out, /Ran 1[0-9] tests/, out);
});
