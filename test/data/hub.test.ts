import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DataError, gpt2Tokenizer, loadTokenizer, repoCacheDir, resolveModelPath } from '../../src/data/index.js';
import { startHub, type HubServer } from './hub-server.js';
import { HF_REFERENCE, tempDir } from './paths.js';

const C1 = 'a'.repeat(8) + '0123456789abcdef0123456789abcdef';
const C2 = 'b'.repeat(40);
const enc = (s: string) => new TextEncoder().encode(s);
const gpt2Dir = join(HF_REFERENCE, 'gpt2', 'model');
const weights = new Uint8Array(readFileSync(join(gpt2Dir, 'model.safetensors')));
const llamaWeights = new Uint8Array(readFileSync(join(HF_REFERENCE, 'llama', 'model', 'model.safetensors')));

/** Tensor names of a safetensors file: u64 header length, then the JSON header. */
function tensorNames(b: Uint8Array): string[] {
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  return Object.keys(JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n)))).filter((k) => k !== '__metadata__');
}

const shardIndex = {
  metadata: { total_size: weights.byteLength + llamaWeights.byteLength },
  weight_map: {
    ...Object.fromEntries(tensorNames(weights).map((t) => [t, 'model-00001-of-00002.safetensors'])),
    ...Object.fromEntries(tensorNames(llamaWeights).map((t) => [`llama.${t}`, 'model-00002-of-00002.safetensors'])),
  },
};

let hub: HubServer;
before(async () => {
  hub = await startHub({
    'acme/tiny-gpt2': {
      commit: C1, refs: ['main', 'v1.0'], lfs: ['model.safetensors'],
      files: {
        'config.json': new Uint8Array(readFileSync(join(gpt2Dir, 'config.json'))),
        'generation_config.json': new Uint8Array(readFileSync(join(gpt2Dir, 'generation_config.json'))),
        'model.safetensors': weights,
        'tokenizer.json': enc(JSON.stringify(gpt2Tokenizer().json)),
        'tokenizer_config.json': enc(JSON.stringify(gpt2Tokenizer().config)),
      },
    },
    'acme/sharded': {
      commit: C2, refs: ['main'], lfs: ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'],
      files: {
        'config.json': enc('{"model_type": "gpt2"}'),
        'model.safetensors.index.json': enc(JSON.stringify(shardIndex)),
        'model-00001-of-00002.safetensors': weights,
        'model-00002-of-00002.safetensors': llamaWeights,
      },
    },
    'acme/corrupt': { commit: C2, refs: ['main'], lfs: ['model.safetensors'], corrupt: true, files: { 'config.json': enc('{}'), 'model.safetensors': weights } },
    'acme/bin-only': { commit: C2, refs: ['main'], lfs: [], files: { 'config.json': enc('{}'), 'pytorch_model.bin': enc('x') } },
  });
});
after(() => hub.close());

describe('resolveModelPath against a loopback Hub', () => {
  it('downloads into the HF cache layout and reads it back offline', async () => {
    const cacheDir = tempDir('hub');
    const snap = await resolveModelPath('acme/tiny-gpt2', { cacheDir, endpoint: hub.endpoint });
    const repo = repoCacheDir(cacheDir, 'acme/tiny-gpt2');
    assert.equal(repo, join(cacheDir, 'models--acme--tiny-gpt2'));
    assert.equal(snap, join(repo, 'snapshots', C1));
    assert.equal(readFileSync(join(repo, 'refs', 'main'), 'utf8'), C1);
    // Snapshot entries are relative symlinks into blobs/, named by ETag (sha256 for LFS files).
    const sha = createHash('sha256').update(weights).digest('hex');
    assert.ok(lstatSync(join(snap, 'model.safetensors')).isSymbolicLink());
    assert.equal(readlinkSync(join(snap, 'model.safetensors')), join('..', '..', 'blobs', sha));
    assert.deepEqual(new Uint8Array(readFileSync(join(snap, 'model.safetensors'))), weights);
    assert.ok(existsSync(join(snap, 'tokenizer.json')) && !existsSync(join(snap, 'vocab.json')));
    assert.deepEqual(loadTokenizer(snap).encode('Hello world'), [15496, 995]);

    const before = hub.requests.length;
    assert.equal(await resolveModelPath('acme/tiny-gpt2', { cacheDir, offline: true }), snap);
    assert.equal(await resolveModelPath('acme/tiny-gpt2', { cacheDir, revision: C1, endpoint: hub.endpoint }), snap);
    assert.equal(hub.requests.length, before, 'offline and commit-pinned resolves must not touch the network');
  });

  it('honours HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE', async () => {
    const home = tempDir('hfhome');
    const names = ['HF_ENDPOINT', 'HF_HOME', 'HF_HUB_CACHE', 'HF_HUB_OFFLINE'] as const;
    const saved = names.map((k) => process.env[k]);
    try {
      process.env.HF_ENDPOINT = `${hub.endpoint}/`;
      process.env.HF_HOME = home;
      delete process.env.HF_HUB_CACHE;
      delete process.env.HF_HUB_OFFLINE;
      const snap = await resolveModelPath('acme/tiny-gpt2', { revision: 'v1.0' });
      assert.equal(snap, join(home, 'hub', 'models--acme--tiny-gpt2', 'snapshots', C1));
      assert.equal(readFileSync(join(home, 'hub', 'models--acme--tiny-gpt2', 'refs', 'v1.0'), 'utf8'), C1);
      process.env.HF_HUB_OFFLINE = '1';
      const n = hub.requests.length;
      assert.equal(await resolveModelPath('acme/tiny-gpt2', { revision: 'v1.0' }), snap);
      await assert.rejects(resolveModelPath('acme/sharded'), /models--acme--sharded\/snapshots: acme\/sharded@main is not in the cache, and offline mode is on/);
      assert.equal(hub.requests.length, n);
    } finally {
      names.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i])));
    }
  });

  it('fetches every shard named by model.safetensors.index.json', async () => {
    const cacheDir = tempDir('hub');
    const snap = await resolveModelPath('acme/sharded', { cacheDir, endpoint: hub.endpoint });
    assert.deepEqual(new Uint8Array(readFileSync(join(snap, 'model-00002-of-00002.safetensors'))), llamaWeights);
    assert.ok(existsSync(join(snap, 'model-00001-of-00002.safetensors')));
    assert.ok(!existsSync(join(snap, 'model.safetensors')));
    assert.ok(hub.requests.some((r) => r === `HEAD /acme/sharded/resolve/${C2}/model-00002-of-00002.safetensors`), 'later files are fetched at the commit');
  });

  it('errors name the URL', async () => {
    const cacheDir = tempDir('hub');
    const o = { cacheDir, endpoint: hub.endpoint };
    await assert.rejects(resolveModelPath('acme/missing', o), (e: unknown) => {
      assert.ok(e instanceof DataError);
      assert.equal(e.file, `${hub.endpoint}/acme/missing/resolve/main/config.json`);
      assert.match(e.message, /HTTP 401 RepositoryNotFound: Repository not found; the repo may not exist, or be private or gated \(set HF_TOKEN\)/);
      return true;
    });
    await assert.rejects(resolveModelPath('acme/tiny-gpt2', { ...o, revision: 'v9' }), /resolve\/v9\/config\.json: HTTP 404 RevisionNotFound/);
    await assert.rejects(resolveModelPath('acme/bin-only', o), /resolve\/b+\/model\.safetensors: acme\/bin-only has neither model\.safetensors nor model\.safetensors\.index\.json/);
    await assert.rejects(resolveModelPath('acme/corrupt', o), /resolve\/b+\/model\.safetensors: corrupt download: sha256 differs/);
    assert.ok(!existsSync(join(repoCacheDir(cacheDir, 'acme/corrupt'), 'refs', 'main')), 'a failed download leaves no ref');
    await assert.rejects(resolveModelPath('not a/valid/id', o), /not a Hub model id/);
    const file = join(tempDir('hub'), 'config.json');
    writeFileSync(file, '{}');
    await assert.rejects(resolveModelPath(file), /is a file; expected a model folder or a Hub id/);
  });

  it('a folder is returned as is', async () => {
    assert.equal(await resolveModelPath(gpt2Dir), gpt2Dir);
  });

  it('an unreachable Hub falls back to the cache, else names the URL', async () => {
    const cacheDir = tempDir('hub');
    const live = await resolveModelPath('acme/tiny-gpt2', { cacheDir, endpoint: hub.endpoint });
    // A port that was just free: connecting to it is refused.
    const closed = await startHub({});
    const dead = closed.endpoint;
    await closed.close();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      assert.equal(await resolveModelPath('acme/tiny-gpt2', { cacheDir, endpoint: dead }), live);
      await new Promise((r) => setImmediate(r));
      assert.match(warnings.join('\n'), /cannot connect .*using the cached snapshot/);
    } finally {
      process.off('warning', onWarning);
    }
    await assert.rejects(resolveModelPath('acme/sharded', { cacheDir, endpoint: dead }), new RegExp(`${dead}/acme/sharded/resolve/main/config\\.json: cannot connect \\(ECONNREFUSED\\)`));
  });
});
