/** Paths and tool checks shared by the kernel tests (compiled to dist/test/kernel/). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const KERNEL_MAIN = join(REPO_ROOT, 'dist', 'kernel', 'main.js');
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** Why a Python-side tool is unusable, or undefined when it imports fine. */
export function missingPython(modules: string[]): string | undefined {
  const r = spawnSync(SYSTEM_PYTHON, ['-c', `import ${modules.join(', ')}`], { encoding: 'utf8' });
  if (r.error) return `${SYSTEM_PYTHON} not found`;
  return r.status === 0 ? undefined : `${SYSTEM_PYTHON} cannot import ${modules.join(', ')} (apt-get install jupyter-notebook jupyter-nbconvert python3-jupyter-kernel-test)`;
}

/** A temporary folder removed when the test ends. */
export function tempDir(t: { after(fn: () => void): void }, prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Registers the kernelspec with the real installer into `jupyterPath`. */
export function installKernel(jupyterPath: string): void {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'dist', 'kernel', 'install.js')], {
    env: { ...process.env, JUPYTER_PATH: jupyterPath }, encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`kernel install failed: ${r.stderr}`);
}
