/**
 * The kernel's life is bound to Jupyter's: when the process that started it
 * dies without shutting it down (SIGKILL, a crash), the kernel exits too,
 * even while a cell holds its main thread.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, SYSTEM_PYTHON, installKernel, missingPython, tempDir } from './env.js';

const missing = missingPython(['jupyter_client']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Alive and not a zombie (a reaped-late orphan still answers kill 0). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

/** jupyter_client picks the kernel's ports by binding and releasing them, so another process can take one before the kernel binds it: start again then */
async function orphan(t: { after(fn: () => void): void }, mode: 'idle' | 'stuck'): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await orphanOnce(t, mode);
    } catch (e) {
      if (attempt >= 3 || !/Address already in use/.test(String((e as Error).message))) throw e;
    }
  }
}

async function orphanOnce(t: { after(fn: () => void): void }, mode: 'idle' | 'stuck'): Promise<number> {
  const jupyterPath = tempDir(t, 'sharelora-jp-');
  const cwd = tempDir(t, 'sharelora-orphan-');
  installKernel(jupyterPath);
  const py = spawn(SYSTEM_PYTHON, [join(REPO_ROOT, 'test', 'kernel', 'orphan.py'), mode], {
    cwd, env: { ...process.env, JUPYTER_PATH: jupyterPath, JUPYTER_RUNTIME_DIR: cwd, SHARELORA_BACKEND: 'cpu' },
  });
  let out = '';
  py.stdout.on('data', (d) => { out += d; });
  py.stderr.on('data', (d) => { out += d; });
  let kernel = 0;
  t.after(() => {
    py.kill('SIGKILL');
    if (kernel && running(kernel)) process.kill(kernel, 'SIGKILL');
  });
  for (const until = Date.now() + 150_000; !/^\d+$/m.test(out); await sleep(100)) {
    if (Date.now() > until || py.exitCode !== null) throw new Error(`the kernel did not start:\n${out}`);
  }
  kernel = Number(/^(\d+)$/m.exec(out)![1]);
  assert.ok(running(kernel));
  py.kill('SIGKILL');
  const killedAt = Date.now();
  while (running(kernel) && Date.now() - killedAt < 15_000) await sleep(100);
  assert.ok(!running(kernel), `the ${mode} kernel outlived Jupyter by 15 s\n${out}`);
  return Date.now() - killedAt;
}

test('the kernel exits within seconds of Jupyter being killed, idle or stuck in a cell', { skip: missing, timeout: 300_000 }, async (t) => {
  const [idle, stuck] = await Promise.all([orphan(t, 'idle'), orphan(t, 'stuck')]);
  t.diagnostic(`gone ${idle} ms (idle) and ${stuck} ms (stuck) after Jupyter`);
  assert.ok(idle < 5000, `idle kernel: ${idle} ms`);
  assert.ok(stuck < 8000, `stuck kernel: ${stuck} ms`);
});
