/**
 * A library error in a plain Node script on the wasm backend surfaces as
 * itself: Node's own report of the error and exit status 1, not a stack
 * through tfjs-backend-wasm's `throw ex` and exit status 7 (issue 23).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './helpers.js';

const INDEX = pathToFileURL(join(ROOT, 'dist', 'src', 'index.js')).href;

function script(body: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { useBackend, datasets, loadTokenizer } from ${JSON.stringify(INDEX)};\nawait useBackend('wasm');\n${body}`],
    { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.signal, null, `the child ran past its deadline: ${r.stderr}`);
  return { status: r.status, stderr: r.stderr };
}

const SPLIT = /RangeError: imdb: unknown split "nosuch"; expected train, validation, test or all/;
const CASES: [string, string, RegExp][] = [
  ['top-level await', "await datasets.imdb({ split: 'nosuch', limit: 8 });", SPLIT],
  ['unhandled rejection', "void datasets.imdb({ split: 'nosuch', limit: 8 });", SPLIT],
  ['uncaught exception in a timer', "setTimeout(() => loadTokenizer('nosuch-model'), 0);", /ModelNotFoundError: model "nosuch-model" not found/],
];

for (const [name, body, message] of CASES) {
  it(`wasm backend, a library error (${name}): exit status 1 and the error's own message`, { timeout: 90_000 }, () => {
    const { status, stderr } = script(body);
    assert.equal(status, 1, stderr);
    assert.match(stderr, message);
    assert.doesNotMatch(stderr, /tf-backend-wasm|throw ex/, 'the stack does not run through the wasm module');
  });
}
