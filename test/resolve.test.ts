/**
 * Embedded models load by name from any working directory (notebooks/
 * included); a name that is neither a folder, an embedded model nor on the
 * Hub fails once, saying so and listing the embedded names.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, loadTokenizer, ModelNotFoundError, embeddedModels } from '../src/models/index.js';
import { ROOT, testBackend } from './helpers.js';

describe('model names', () => {
  const cwd = process.cwd();
  let cache: string;
  before(async () => { await testBackend(); cache = mkdtempSync(join(tmpdir(), 'sharelora-hub-empty-')); });
  after(() => process.chdir(cwd));

  it('lists the embedded models', () => {
    assert.ok(embeddedModels().includes('sharelora-gpt2-mini'));
  });

  for (const where of ['notebooks', 'tmp'] as const) {
    it(`loads "sharelora-gpt2-mini" and "data/sharelora-gpt2-mini" from ${where}/`, async () => {
      process.chdir(where === 'tmp' ? mkdtempSync(join(tmpdir(), 'sharelora-cwd-')) : join(ROOT, 'notebooks'));
      for (const name of ['sharelora-gpt2-mini', 'data/sharelora-gpt2-mini']) {
        const model = await loadModel(name, { offline: true, cacheDir: cache });
        assert.equal(model.config.vocabSize, 8257);
        model.dispose();
        assert.equal(loadTokenizer(name).vocabSize, 8257);
      }
      process.chdir(cwd);
    });
  }

  it('a local folder still wins over an embedded name', async () => {
    process.chdir(ROOT);
    const model = await loadModel('test/fixtures/hf-reference/gpt2/model');
    assert.equal(model.family, 'gpt2');
    model.dispose();
  });

  it('an unknown name is one ModelNotFoundError naming the folder, the embedded models and the Hub problem', async () => {
    process.chdir(mkdtempSync(join(tmpdir(), 'sharelora-cwd-')));
    const err = (e: unknown) => {
      assert.ok(e instanceof ModelNotFoundError);
      assert.match(e.message, /model "(no-such-model|data\/no-such-model)" not found: it is not a local folder \(.* does not exist\), not a model embedded in .*data.*\(embedded: .*sharelora-gpt2-mini.*\)/);
      return true;
    };
    // offline and not cached: the Hub cannot provide it
    await assert.rejects(loadModel('no-such-model', { offline: true, cacheDir: cache }), (e) => err(e) && /Hugging Face Hub could not provide it/.test((e as Error).message));
    // a Hub that refuses connections (a closed loopback port): still the same single error, not a bare connection error
    await assert.rejects(loadModel('data/no-such-model', { endpoint: 'http://127.0.0.1:9', cacheDir: cache }), err);
    await assert.rejects(loadModel('./no/such/dir', { offline: true, cacheDir: cache }), (e) => err2(e));
    assert.throws(() => loadTokenizer('no-such-model', { cacheDir: cache }), (e) => err(e) && /Hub cache has no complete snapshot/.test((e as Error).message));
    process.chdir(cwd);
  });
});

function err2(e: unknown): boolean {
  assert.ok(e instanceof ModelNotFoundError);
  assert.match(e.message, /not a Hugging Face Hub id/);
  assert.match(e.message, /embedded: .*sharelora-gpt2-mini/);
  return true;
}
