/**
 * The kernelspec: where Jupyter looks for it and what kernel.json says.
 * Written directly (no Python needed): a kernelspec is just a folder.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

export const KERNEL_NAME = 'sharelora';
export const DISPLAY_NAME = 'TypeScript · ShareLoRA';

export interface KernelJson {
  argv: string[];
  display_name: string;
  language: string;
  interrupt_mode: 'message';
  metadata: Record<string, unknown>;
}

/**
 * argv uses absolute paths (the node binary running this install, and the
 * entry script) so the kernel starts no matter what PATH Jupyter has.
 */
export function kernelJson(entry: string, repoRoot: string, version: string): KernelJson {
  return {
    argv: [process.execPath, '--enable-source-maps', entry, '{connection_file}'],
    display_name: DISPLAY_NAME,
    language: 'typescript',
    interrupt_mode: 'message',
    metadata: { sharelora: { version, root: repoRoot } },
  };
}

/** jupyter_core.paths.jupyter_data_dir(), the per-user data folder. */
export function userDataDir(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (env.JUPYTER_DATA_DIR) return env.JUPYTER_DATA_DIR;
  const home = (platform === 'win32' ? env.USERPROFILE : env.HOME) || homedir();
  if (platform === 'darwin') return join(home, 'Library', 'Jupyter');
  if (platform === 'win32') return join(env.APPDATA || join(home, 'AppData', 'Roaming'), 'jupyter');
  return join(env.XDG_DATA_HOME || join(home, '.local', 'share'), 'jupyter');
}

export interface InstallTarget {
  prefix?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * --prefix P → P/share/jupyter/kernels/sharelora (like `jupyter kernelspec install --prefix`);
 * else the first JUPYTER_PATH entry when set (so a custom search path finds it first);
 * else the user data folder.
 */
export function kernelDir(target: InstallTarget = {}): string {
  const env = target.env ?? process.env;
  if (target.prefix) return join(target.prefix, 'share', 'jupyter', 'kernels', KERNEL_NAME);
  const first = env.JUPYTER_PATH?.split(delimiter).find((p) => p.trim() !== '');
  if (first) return join(first, 'kernels', KERNEL_NAME);
  return join(userDataDir(env), 'kernels', KERNEL_NAME);
}

export function writeKernelSpec(dir: string, spec: KernelJson): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'kernel.json');
  writeFileSync(file, `${JSON.stringify(spec, null, 2)}\n`);
  return file;
}
