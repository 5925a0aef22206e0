/**
 * `npm start [-- jupyter args]`: register the kernelspec, then open Jupyter
 * (JupyterLab when installed, else Notebook) on notebooks/.
 */
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { install, parseInstallArgs } from './install.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const INSTALL_HELP = [
  'Jupyter is not installed (no `jupyter lab` or `jupyter notebook` on PATH). Install one of:',
  '  Debian/Ubuntu:  sudo apt-get install jupyter-notebook',
  '  pip:            python3 -m pip install notebook      (or: jupyterlab)',
  'then run `npm start` again. The kernel is already registered, so VS Code and other front-ends can use it now.',
].join('\n');

/** The first Jupyter front-end that answers --version. */
export function findJupyterApp(env: NodeJS.ProcessEnv = process.env): 'lab' | 'notebook' | undefined {
  for (const app of ['lab', 'notebook'] as const) {
    const r = spawnSync('jupyter', [app, '--version'], { env, stdio: 'ignore', timeout: 30_000 });
    if (!r.error && r.status === 0) return app;
  }
  return undefined;
}

function main(): void {
  const { prefix, rest } = parseInstallArgs(process.argv.slice(2));
  const file = install({ prefix });
  console.log(`registered the sharelora kernel: ${file}`);
  // A kernelspec under --prefix is only found if Jupyter searches there.
  const env = prefix && !process.env.JUPYTER_PATH ? { ...process.env, JUPYTER_PATH: join(prefix, 'share', 'jupyter') } : process.env;
  const app = findJupyterApp(env);
  if (!app) {
    console.error(INSTALL_HELP);
    process.exit(1);
  }
  const args = [app, `--notebook-dir=${join(REPO_ROOT, 'notebooks')}`];
  // Jupyter refuses to run as root without this; containers often run as root.
  if (process.getuid?.() === 0 && !rest.includes('--allow-root')) args.push('--allow-root');
  args.push(...rest);
  console.log(`jupyter ${args.join(' ')}`);
  const child = spawn('jupyter', args, { stdio: 'inherit', env });
  // The terminal's Ctrl-C reaches Jupyter directly (same process group); wait for it to finish.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
