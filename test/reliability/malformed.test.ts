/**
 * The malformed-input corpus (test/fixtures/malformed, written by its
 * generate.mjs): each file must fail with the typed error its manifest entry
 * names, in a message that names the file and the problem, quickly, and
 * without leaving tensors behind.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadAdapter } from '../../src/adapters/peft.js';
import { AdapterConfigError } from '../../src/adapters/config.js';
import { CheckpointError } from '../../src/util/errors.js';
import { loadModelFromDir } from '../../src/models/load.js';
import { parseSafetensors, readSafetensors } from '../../src/models/safetensors.js';
import type { Model } from '../../src/models/types.js';
import { ROOT, testBackend } from '../helpers.js';

export const MALFORMED = join(ROOT, 'test', 'fixtures', 'malformed');
interface Case { kind: 'safetensors' | 'model' | 'adapter'; path: string; names?: string; error: 'CheckpointError' | 'AdapterConfigError'; expect: string }
const cases = JSON.parse(readFileSync(join(MALFORMED, 'manifest.json'), 'utf8')) as Case[];

async function failure(f: () => unknown): Promise<Error> {
  try {
    await f();
  } catch (e) {
    return e as Error;
  }
  throw new assert.AssertionError({ message: 'loaded although malformed' });
}

describe('malformed checkpoints, configs and adapters', () => {
  let base: Model;
  before(async () => {
    await testBackend();
    base = loadModelFromDir(join(MALFORMED, 'base', 'model'));
  });

  it('the committed corpus is exactly what generate.mjs writes', () => {
    const out = mkdtempSync(join(tmpdir(), 'sl-malformed-'));
    execFileSync(process.execPath, [join(MALFORMED, 'generate.mjs')], { env: { ...process.env, MALFORMED_OUT: out } });
    const files = (dir: string): string[] => readdirSync(dir).flatMap((n) => statSync(join(dir, n)).isDirectory() ? files(join(dir, n)).map((f) => join(n, f)) : [n]);
    const made = files(out).sort();
    assert.deepEqual(made, files(MALFORMED).filter((f) => f !== 'generate.mjs').sort());
    for (const f of made) assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(MALFORMED, f))), `${f} differs from a fresh generate.mjs run`);
  });

  it('the base checkpoint and adapter every case edits load cleanly', async () => {
    const ad = await loadAdapter(base, join(MALFORMED, 'base', 'adapter'));
    assert.equal(ad.share, 'A');
    assert.equal(ad.modules.length, 4);
    ad.unload();
  });

  for (const c of cases) {
    it(`${c.path}: ${c.error} "${c.expect}"`, async () => {
      const path = join(MALFORMED, c.path);
      const tensors = tf.memory().numTensors;
      const t0 = performance.now();
      const err = await failure(async () => {
        if (c.kind === 'safetensors') readSafetensors(path);
        else if (c.kind === 'model') loadModelFromDir(path).dispose();
        else (await loadAdapter(base, path)).unload();
      });
      assert.ok(err instanceof (c.error === 'AdapterConfigError' ? AdapterConfigError : CheckpointError), `expected ${c.error}, got ${err.name}: ${err.message}`);
      assert.ok(err.message.includes(c.expect), `message lacks "${c.expect}": ${err.message}`);
      const named = join(MALFORMED, c.names ?? c.path).replace(/\/$/, '');
      assert.ok(err.message.includes(named), `message does not name ${relative(MALFORMED, named)}: ${err.message}`);
      assert.equal(tf.memory().numTensors, tensors, 'a failed load left tensors behind');
      assert.ok(performance.now() - t0 < 3000, 'took over 3 s');
      if (c.kind === 'safetensors') {
        // the in-memory parser makes the same checks as the file reader
        const again = await failure(() => parseSafetensors(new Uint8Array(readFileSync(path)), path));
        assert.equal(again.message, err.message);
      }
    });
  }

  it('a FIFO or a folder where a file should be fails at once instead of blocking', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'sl-fifo-'));
    try {
      execFileSync('mkfifo', [join(dir, 'model.safetensors')]);
    } catch {
      t.skip('no mkfifo on this platform');
      return;
    }
    const fifo = await failure(() => readSafetensors(join(dir, 'model.safetensors')));
    assert.ok(fifo instanceof CheckpointError && /not a regular file/.test(fifo.message), fifo.message);
    mkdirSync(join(dir, 'config.json'));
    const folder = await failure(() => loadModelFromDir(dir));
    assert.ok(folder instanceof CheckpointError && /config\.json: cannot read \(not a regular file\)/.test(folder.message), folder.message);
  });
});
