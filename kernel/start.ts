/**
 * `npm start [-- jupyter args]`: register the kernelspec, then open Jupyter
 * (JupyterLab when installed, else Notebook) on notebooks/. One Ctrl-C or
 * SIGTERM shuts Jupyter down.
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

export interface Host {
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  uid?: number;
}

/** Jupyter's command line: a browser is opened only where one can be shown. */
export function jupyterArgs(app: 'lab' | 'notebook', rest: string[], host: Host): string[] {
  const args = [app, `--notebook-dir=${join(REPO_ROOT, 'notebooks')}`];
  // Jupyter refuses to run as root without this; containers often run as root.
  if (host.uid === 0 && !rest.includes('--allow-root')) args.push('--allow-root');
  // Without a display, Jupyter would start a text-mode browser (or fail to start one) in this terminal.
  const graphical = host.platform === 'darwin' || host.platform === 'win32' || Boolean(host.env.DISPLAY || host.env.WAYLAND_DISPLAY);
  if (!graphical && !rest.some((a) => a === '--no-browser' || a.startsWith('--browser'))) args.push('--no-browser');
  return [...args, ...rest];
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
  const args = jupyterArgs(app, rest, { env, platform: process.platform, uid: process.getuid?.() });
  console.log(`jupyter ${args.join(' ')}`);
  // In its own process group the terminal's Ctrl-C reaches only this process. Jupyter answers a
  // SIGINT with a y/n question and a later one with a traceback; SIGTERM makes it shut down cleanly.
  const ownGroup = process.platform !== 'win32';
  const child = spawn('jupyter', args, { stdio: 'inherit', env, detached: ownGroup });
  let signals = 0;
  let retry: NodeJS.Timeout | undefined;
  const stop = () => {
    signals++;
    if (signals > 1) { child.kill('SIGKILL'); return; }
    console.log('\nshutting Jupyter down (again to force it)');
    child.kill('SIGTERM');
    // Notebook 6's SIGTERM handler needs the event loop that start() creates only after printing its URLs: a SIGTERM
    // in that moment is lost to an AttributeError (no io_loop) and the server stays up, so ask again a few times
    let left = 5;
    retry = setInterval(() => { if (left-- > 0 && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM'); else clearInterval(retry); }, 2000);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, stop);
  child.on('exit', (code, signal) => { clearInterval(retry); process.exit(code ?? (signal === 'SIGTERM' && signals ? 0 : 1)); });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
