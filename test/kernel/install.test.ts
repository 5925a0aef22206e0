/**
 * Kernelspec registration (npm run kernel:install) and npm start's Jupyter
 * launch, with the real CLIs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { userDataDir } from '../../kernel/kernelspec.js';
import { KERNEL_MAIN, REPO_ROOT, SYSTEM_PYTHON, missingPython, tempDir } from './env.js';

const INSTALL = join(REPO_ROOT, 'dist', 'kernel', 'install.js');
const START = join(REPO_ROOT, 'dist', 'kernel', 'start.js');

function runNode(script: string, args: string[], env: NodeJS.ProcessEnv) {
  return spawnSync(process.execPath, [script, ...args], { env, encoding: 'utf8' });
}

describe('kernelspec installation', () => {
  it('writes kernel.json with absolute node and entry paths into the user data folder', (t) => {
    const home = tempDir(t, 'sharelora-home-');
    const env = { ...process.env, HOME: home, XDG_DATA_HOME: '', JUPYTER_DATA_DIR: '', JUPYTER_PATH: '' };
    const r = runNode(INSTALL, [], env);
    assert.equal(r.status, 0, r.stderr);
    const file = join(home, '.local', 'share', 'jupyter', 'kernels', 'sharelora', 'kernel.json');
    assert.equal(userDataDir({ HOME: home }, 'linux'), join(home, '.local', 'share', 'jupyter'));
    const spec = JSON.parse(readFileSync(file, 'utf8'));
    assert.deepEqual(spec.argv, [process.execPath, '--enable-source-maps', KERNEL_MAIN, '{connection_file}']);
    assert.equal(spec.display_name, 'TypeScript · ShareLoRA');
    assert.equal(spec.language, 'typescript');
    // Jupyter then sends interrupt_request, which the control thread serves even while a cell holds the main thread.
    assert.equal(spec.interrupt_mode, 'message');
  });

  it('honours --prefix and JUPYTER_PATH, and rejects unknown arguments', (t) => {
    const dir = tempDir(t, 'sharelora-prefix-');
    assert.equal(runNode(INSTALL, ['--prefix', join(dir, 'p')], process.env).status, 0);
    assert.ok(existsSync(join(dir, 'p', 'share', 'jupyter', 'kernels', 'sharelora', 'kernel.json')));
    assert.equal(runNode(INSTALL, [], { ...process.env, JUPYTER_PATH: `${join(dir, 'jp')}:/elsewhere` }).status, 0);
    assert.ok(existsSync(join(dir, 'jp', 'kernels', 'sharelora', 'kernel.json')));
    const bad = runNode(INSTALL, ['--system'], process.env);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /unknown argument --system; usage: node dist\/kernel\/install\.js \[--user \| --prefix DIR\]/);
  });

  it('is listed by jupyter kernelspec', { skip: missingPython(['jupyter_client']) }, (t) => {
    const jp = tempDir(t, 'sharelora-jp-');
    runNode(INSTALL, [], { ...process.env, JUPYTER_PATH: jp });
    const r = spawnSync(SYSTEM_PYTHON, ['-m', 'jupyter_client.kernelspecapp', 'list', '--json'], { env: { ...process.env, JUPYTER_PATH: jp }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).kernelspecs.sharelora.resource_dir, join(jp, 'kernels', 'sharelora'));
  });
});

describe('npm start', () => {
  it('registers the kernel and explains how to install Jupyter when it is missing', (t) => {
    const jp = tempDir(t, 'sharelora-jp-');
    const r = runNode(START, [], { ...process.env, JUPYTER_PATH: jp, PATH: '/nonexistent' });
    assert.equal(r.status, 1);
    assert.ok(existsSync(join(jp, 'kernels', 'sharelora', 'kernel.json')));
    assert.match(r.stderr, /apt-get install jupyter-notebook/);
    assert.match(r.stderr, /pip install notebook/);
  });

  it('opens Jupyter on notebooks/ with the sharelora kernel available', { skip: missingPython(['notebook']), timeout: 60_000 }, async (t) => {
    const jp = tempDir(t, 'sharelora-jp-');
    const runtime = tempDir(t, 'sharelora-rt-');
    const port = 20000 + Math.floor(Math.random() * 20000);
    const child = spawn(process.execPath, [START, '--no-browser', `--port=${port}`, '--ServerApp.token=', '--NotebookApp.token='], {
      env: { ...process.env, JUPYTER_PATH: jp, JUPYTER_RUNTIME_DIR: runtime, JUPYTER_CONFIG_DIR: runtime }, detached: true,
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    t.after(() => { try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* already gone */ } });
    let specs: { kernelspecs?: Record<string, unknown> } | undefined;
    for (let i = 0; i < 100 && !specs; i++) {
      await new Promise((r) => setTimeout(r, 300));
      specs = await fetch(`http://127.0.0.1:${port}/api/kernelspecs`).then((r) => (r.ok ? r.json() as never : undefined), () => undefined);
    }
    assert.ok(specs, `Jupyter did not come up:\n${out}`);
    assert.ok(specs!.kernelspecs?.sharelora, JSON.stringify(specs));
    const tree = await fetch(`http://127.0.0.1:${port}/api/contents`).then((r) => r.json() as Promise<{ path: string; type: string }>);
    assert.equal(tree.type, 'directory');
    assert.match(out, new RegExp(`jupyter (lab|notebook) --notebook-dir=${join(REPO_ROOT, 'notebooks')}`));
  });
});
