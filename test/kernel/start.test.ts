/**
 * `npm start` (dist/kernel/start.js) with the real Jupyter: no browser
 * without a display, and one Ctrl-C shuts Jupyter down cleanly.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { findJupyterApp, jupyterArgs } from '../../kernel/start.js';
import { REPO_ROOT, SYSTEM_PYTHON, tempDir } from './env.js';
import { freePort } from '../net.js';

const START = join(REPO_ROOT, 'dist', 'kernel', 'start.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


const listening = (port: number) => new Promise<boolean>((resolve) => {
  const s = connect(port, '127.0.0.1');
  s.once('connect', () => { s.destroy(); resolve(true); });
  s.once('error', () => resolve(false));
});

describe('npm start', () => {
  it('adds --no-browser only where no browser can be shown', () => {
    const headless = jupyterArgs('notebook', [], { env: {}, platform: 'linux' });
    assert.ok(headless.includes('--no-browser'));
    assert.ok(!jupyterArgs('notebook', [], { env: { DISPLAY: ':0' }, platform: 'linux' }).includes('--no-browser'));
    assert.ok(!jupyterArgs('lab', [], { env: { WAYLAND_DISPLAY: 'wayland-0' }, platform: 'linux' }).includes('--no-browser'));
    assert.ok(!jupyterArgs('lab', [], { env: {}, platform: 'darwin' }).includes('--no-browser'));
    assert.deepEqual(jupyterArgs('lab', ['--no-browser'], { env: {}, platform: 'linux' }).filter((a) => a === '--no-browser'), ['--no-browser']);
    assert.ok(!jupyterArgs('lab', ['--browser=firefox'], { env: {}, platform: 'linux' }).includes('--no-browser'));
    assert.ok(jupyterArgs('lab', [], { env: {}, platform: 'linux', uid: 0 }).includes('--allow-root'));
  });

  const app = findJupyterApp();
  it('ends Jupyter on one Ctrl-C in a terminal, without a traceback or a question', { skip: !app && 'Jupyter is not installed', timeout: 120_000 }, async (t) => {
    const home = tempDir(t, 'sharelora-start-');
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env, HOME: home, JUPYTER_PATH: join(home, 'jp'), JUPYTER_DATA_DIR: join(home, 'data'),
      JUPYTER_CONFIG_DIR: join(home, 'config'), JUPYTER_RUNTIME_DIR: join(home, 'runtime'), XDG_DATA_HOME: '',
    };
    delete env.DISPLAY;
    delete env.WAYLAND_DISPLAY;
    // A real terminal: Ctrl-C there signals the whole foreground process group, and Jupyter asks y/n when it has a tty.
    const term = spawn(SYSTEM_PYTHON, [join(REPO_ROOT, 'test', 'kernel', 'terminal.py'), process.execPath, START, `--port=${port}`, '--port-retries=0'], { env });
    let out = '';
    term.stdout.on('data', (d) => { out += d; });
    term.stderr.on('data', (d) => { out += d; });
    const exited = new Promise<number | null>((r) => term.on('exit', (code) => r(code)));
    t.after(() => { if (term.exitCode === null) term.kill('SIGKILL'); });

    for (const until = Date.now() + 90_000; !await listening(port); await sleep(250)) {
      if (Date.now() > until || term.exitCode !== null) assert.fail(`Jupyter did not start:\n${out}`);
    }
    assert.match(out, /^jupyter (lab|notebook) .*--no-browser/m);
    term.stdin.write('ctrl-c\n');
    const code = await Promise.race([exited, sleep(20_000).then(() => 'still running')]);
    assert.equal(code, 0, out);
    assert.equal(await listening(port), false, 'Jupyter still serves');
    assert.doesNotMatch(out, /Traceback|Shutdown this (notebook )?server/, out);
  });
});
