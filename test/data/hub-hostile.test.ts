/**
 * The Hub resolver against servers (or proxies) that lie, stall or send too
 * much, and against caches with planted symlinks: nothing may be written,
 * deleted or linked outside the cache, no request may wait forever, and no
 * partial download may be left as a finished file.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DataError, repoCacheDir, resolveModelPath } from '../../src/data/index.js';
import { tempDir } from './paths.js';
import { startRawServer, type RawAnswer, type RawRequest } from './raw-http-server.js';

const C = 'c'.repeat(40);
const enc = (s: string) => new TextEncoder().encode(s);
const CONFIG = enc('{"model_type": "gpt2"}');
const WEIGHTS = new Uint8Array(256).map((_, i) => i);
const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function serve(data: Uint8Array, headers: Record<string, string> = {}): RawAnswer {
  return { headers: { 'x-repo-commit': C, etag: `"${sha1(data)}"`, 'content-length': String(data.length), ...headers }, body: data };
}

/** A Hub with config.json and model.safetensors for acme/x; `custom` answers first when it returns something. */
function repo(custom: (file: string, req: RawRequest) => RawAnswer | undefined = () => undefined) {
  return (req: RawRequest): RawAnswer => {
    if (req.path.startsWith('/cdn/')) return custom(`cdn:${req.path.slice(5)}`, req) ?? { status: 404, headers: { 'content-length': '0' } };
    const m = /^\/acme\/x\/resolve\/([^/]+)\/(.+)$/.exec(req.path);
    if (!m) return { status: 404, headers: { 'content-length': '0' } };
    const file = decodeURIComponent(m[2]!);
    const answer = custom(file, req);
    if (answer) return answer;
    if (file === 'config.json') return serve(CONFIG);
    if (file === 'model.safetensors') return serve(WEIGHTS);
    return { status: 404, headers: { 'x-error-code': 'EntryNotFound', 'x-repo-commit': C, 'content-length': '0' } };
  };
}

/** Every path under dir, for "nothing else was written" checks. */
function tree(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).sort() : [];
}

async function refused(p: Promise<unknown>, pattern: RegExp, file?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DataError, `expected DataError, got ${String(e)}`);
    if (file) assert.equal(e.file, file);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('Hub answers never become paths outside the cache', () => {
  it('an ETag or X-Repo-Commit holding a path is refused; a file outside is neither written nor deleted', async () => {
    const base = tempDir('hub-escape');
    const cacheDir = join(base, 'cache');
    mkdirSync(join(base, 'outside'));
    writeFileSync(join(base, 'outside', 'config.json'), 'precious');
    const etag = await startRawServer(repo((f) => (f === 'config.json' ? serve(CONFIG, { etag: '"../../../x"' }) : undefined)));
    const commit = await startRawServer(repo((f) => (f === 'config.json' ? serve(CONFIG, { 'x-repo-commit': '../../../outside' }) : undefined)));
    try {
      await refused(resolveModelPath('acme/x', { cacheDir, endpoint: etag.endpoint }), /the ETag "\\"\.\.\/\.\.\/\.\.\/x\\"" is not a hex digest or a plain token .*refusing to use it as a cache file name/,
        `${etag.endpoint}/acme/x/resolve/main/config.json`);
      await refused(resolveModelPath('acme/x', { cacheDir, endpoint: commit.endpoint }), /X-Repo-Commit is "\.\.\/\.\.\/\.\.\/outside"; expected a 40-hex commit hash/);
    } finally {
      await etag.close();
      await commit.close();
    }
    assert.ok(!existsSync(join(base, 'x')), 'a blob was written outside the cache');
    assert.ok(lstatSync(join(base, 'outside', 'config.json')).isFile(), 'a file outside the cache was replaced');
    assert.equal(readFileSync(join(base, 'outside', 'config.json'), 'utf8'), 'precious');
    assert.deepEqual(tree(base).filter((p) => !p.startsWith('cache')), ['outside', join('outside', 'config.json')]);
  });

  it('a revision or extra file that is not a git ref name or repo path is refused before any request', async () => {
    const server = await startRawServer(repo());
    try {
      const o = { cacheDir: tempDir('hub-rev'), endpoint: server.endpoint };
      for (const revision of ['../../x', 'main/../../x', '.hidden', 'a b', 'x.lock', 'tag~1', '/abs', '']) {
        await assert.rejects(resolveModelPath('acme/x', { ...o, revision }), (e: unknown) => e instanceof RangeError && /is not a branch, tag or commit name/.test(e.message), revision);
      }
      await assert.rejects(resolveModelPath('acme/x', { ...o, extraFiles: ['../../etc/passwd'] }), /RangeError: extraFiles names "\.\.\/\.\.\/etc\/passwd": has an empty, "\." or "\.\." part/);
      assert.equal(server.requests.length, 0);
      // slashes are fine in a ref (the Hub's pull requests are refs/pr/<n>)
      const snap = await resolveModelPath('acme/x', { ...o, revision: 'refs/pr/1' });
      assert.equal(readFileSync(join(repoCacheDir(o.cacheDir, 'acme/x'), 'refs', 'refs', 'pr', '1'), 'utf8'), C);
      assert.equal(snap, join(repoCacheDir(o.cacheDir, 'acme/x'), 'snapshots', C));
    } finally {
      await server.close();
    }
  });

  it('a shard name holding a path is refused, naming the index file', async () => {
    const index = enc(JSON.stringify({ weight_map: { w: '../../../x.safetensors' } }));
    const server = await startRawServer(repo((f) => (f === 'model.safetensors.index.json' ? serve(index) : f === 'model.safetensors' ? { status: 404, headers: { 'x-repo-commit': C, 'content-length': '0' } } : undefined)));
    const cacheDir = tempDir('hub-shard');
    try {
      await refused(resolveModelPath('acme/x', { cacheDir, endpoint: server.endpoint }), /weight_map names shard "\.\.\/\.\.\/\.\.\/x\.safetensors": has an empty, "\." or "\.\." part/,
        join(repoCacheDir(cacheDir, 'acme/x'), 'snapshots', C, 'model.safetensors.index.json'));
    } finally {
      await server.close();
    }
  });
});

describe('symlinks planted in the cache are not followed outside it', () => {
  const setup = () => {
    const base = tempDir('hub-plant');
    const cacheDir = join(base, 'cache');
    const repoDir = repoCacheDir(cacheDir, 'acme/x');
    mkdirSync(repoDir, { recursive: true });
    mkdirSync(join(base, 'outside'));
    writeFileSync(join(base, 'victim'), 'precious');
    return { base, cacheDir, repoDir };
  };

  it('blobs/, snapshots/<commit> or refs/ linked outside: refused, and nothing is written there', async () => {
    const server = await startRawServer(repo());
    try {
      for (const planted of [['blobs'], ['snapshots', C], ['refs']]) {
        const { base, cacheDir, repoDir } = setup();
        mkdirSync(join(repoDir, ...planted.slice(0, -1)), { recursive: true });
        symlinkSync(join(base, 'outside'), join(repoDir, ...planted));
        await refused(resolveModelPath('acme/x', { cacheDir, endpoint: server.endpoint }), /is a symlink to .*outside, outside the Hub cache .*refusing to write through it/, join(repoDir, ...planted));
        assert.deepEqual(tree(join(base, 'outside')), [], `something was written through ${planted.join('/')}`);
      }
    } finally {
      await server.close();
    }
  });

  it('a blob, ref or snapshot entry linked to a file outside is replaced, and that file is untouched', async () => {
    const server = await startRawServer(repo());
    try {
      const { base, cacheDir, repoDir } = setup();
      for (const dir of ['blobs', 'refs', join('snapshots', C)]) mkdirSync(join(repoDir, dir), { recursive: true });
      const victim = join(base, 'victim');
      symlinkSync(victim, join(repoDir, 'blobs', sha1(CONFIG)));
      symlinkSync(victim, join(repoDir, 'blobs', `${sha1(WEIGHTS)}.incomplete`));
      symlinkSync(victim, join(repoDir, 'refs', 'main'));
      symlinkSync(victim, join(repoDir, 'snapshots', C, 'model.safetensors'));
      const snap = await resolveModelPath('acme/x', { cacheDir, endpoint: server.endpoint });
      assert.equal(readFileSync(victim, 'utf8'), 'precious');
      assert.ok(lstatSync(join(repoDir, 'blobs', sha1(CONFIG))).isFile());
      assert.ok(lstatSync(join(repoDir, 'refs', 'main')).isFile());
      assert.deepEqual(new Uint8Array(readFileSync(join(snap, 'model.safetensors'))), WEIGHTS);
      assert.deepEqual(readdirSync(join(repoDir, 'blobs')).sort(), [sha1(CONFIG), sha1(WEIGHTS)].sort());

      // a cached snapshot with an entry leading outside is not the cache's own: offline it is not used, online it is repaired
      const entry = join(snap, 'config.json');
      await import('node:fs/promises').then((fs) => fs.rm(entry));
      symlinkSync(victim, entry);
      await refused(resolveModelPath('acme/x', { cacheDir, offline: true }), /acme\/x@main is not in the cache/);
      assert.equal(await resolveModelPath('acme/x', { cacheDir, endpoint: server.endpoint }), snap);
      assert.equal(readFileSync(entry, 'utf8'), new TextDecoder().decode(CONFIG));
      assert.equal(readFileSync(victim, 'utf8'), 'precious');
    } finally {
      await server.close();
    }
  });
});

describe('stalled servers time out', () => {
  it('no answer at all: connectTimeoutMs, and the cached snapshot is used when there is one', async () => {
    const silent = await startRawServer(() => ({ silent: true }));
    const good = await startRawServer(repo());
    try {
      const cacheDir = tempDir('hub-silent');
      const t0 = performance.now();
      await refused(resolveModelPath('acme/x', { cacheDir, endpoint: silent.endpoint, connectTimeoutMs: 300 }), /config\.json: no answer within 300 ms \(connectTimeoutMs\)/);
      assert.ok(performance.now() - t0 < 5000, 'the deadline did not hold');
      const snap = await resolveModelPath('acme/x', { cacheDir, endpoint: good.endpoint });
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(w.message);
      process.on('warning', onWarning);
      try {
        assert.equal(await resolveModelPath('acme/x', { cacheDir, endpoint: silent.endpoint, connectTimeoutMs: 300 }), snap);
        await new Promise((r) => setImmediate(r));
      } finally {
        process.off('warning', onWarning);
      }
      assert.match(warnings.join('\n'), /no answer within 300 ms .*using the cached snapshot/);
    } finally {
      await silent.close();
      await good.close();
    }
  });

  it('a body that stops half-way: idleTimeoutMs, and no partial file is left', async () => {
    const server = await startRawServer(repo((f, req) => (f === 'model.safetensors' && req.method === 'GET' ? { ...serve(WEIGHTS), stallAfter: 10 } : undefined)));
    try {
      const cacheDir = tempDir('hub-stall');
      await refused(resolveModelPath('acme/x', { cacheDir, endpoint: server.endpoint, idleTimeoutMs: 300 }), /model\.safetensors: download stalled: nothing for 300 ms after 10 bytes \(idleTimeoutMs\)/);
      assert.deepEqual(readdirSync(join(repoCacheDir(cacheDir, 'acme/x'), 'blobs')), [sha1(CONFIG)]);
      assert.ok(!existsSync(join(repoCacheDir(cacheDir, 'acme/x'), 'refs')));
    } finally {
      await server.close();
    }
  });

  it('the options are checked', async () => {
    for (const o of [{ connectTimeoutMs: 0 }, { idleTimeoutMs: 1.5 }, { connectTimeoutMs: 2 ** 31 }, { maxFileBytes: -1 }]) {
      await assert.rejects(resolveModelPath('acme/x', { cacheDir: tempDir('hub-opt'), ...o }), (e: unknown) => e instanceof RangeError && /must be an integer from 1 to/.test(e.message), JSON.stringify(o));
    }
  });
});

describe('downloads larger than allowed are refused', () => {
  /** model.safetensors as the Hub serves LFS files: a 302 to the CDN carrying X-Linked-Etag and X-Linked-Size */
  const lfs = (size: number, cdn: RawAnswer) => repo((f) => {
    if (f === 'cdn:w') return cdn;
    if (f !== 'model.safetensors') return undefined;
    return { status: 302, headers: { location: '/cdn/w', 'x-repo-commit': C, 'x-linked-etag': `"${sha256(WEIGHTS)}"`, 'x-linked-size': String(size), 'content-length': '0' } };
  });

  async function expectRefusal(handler: (req: RawRequest) => RawAnswer, pattern: RegExp, opts: { maxFileBytes?: number } = {}): Promise<string[]> {
    const server = await startRawServer(handler);
    const cacheDir = tempDir('hub-size');
    try {
      await refused(resolveModelPath('acme/x', { cacheDir, endpoint: server.endpoint, ...opts }), pattern);
    } finally {
      await server.close();
    }
    const blobs = join(repoCacheDir(cacheDir, 'acme/x'), 'blobs');
    // only the files that were complete before the refusal: no partial, no oversized blob
    assert.ok(tree(blobs).every((f) => f === sha1(CONFIG) || f === sha1(WEIGHTS)), `left in blobs/: ${tree(blobs)}`);
    return server.requests;
  }

  it('a config declared larger than maxFileBytes is refused before it is downloaded', async () => {
    const requests = await expectRefusal(repo((f) => (f === 'config.json' ? serve(CONFIG, { 'content-length': '1000000000' }) : undefined)),
      /config\.json: config\.json is declared as 1000000000 bytes, over the 1000-byte limit for files other than weights \(maxFileBytes\)/, { maxFileBytes: 1000 });
    assert.deepEqual(requests.map((r) => r.split(' ')[0]), ['HEAD']);
  });

  it('a tokenizer file with no declared size is cut off at maxFileBytes', async () => {
    const big = new Uint8Array(5000).fill(32);
    await expectRefusal(repo((f, req) => (f === 'tokenizer.json' ? { headers: { 'x-repo-commit': C, etag: `"${sha1(big)}"` }, body: req.method === 'GET' ? big : undefined } : undefined)),
      /tokenizer\.json: the server sent more than the 1000 bytes allowed for a file other than weights \(maxFileBytes\); refusing the download/, { maxFileBytes: 1000 });
  });

  it('weights larger than declared are refused, whether the excess is announced or not', async () => {
    const more = new Uint8Array(500);
    await expectRefusal(lfs(100, { body: more }), /model\.safetensors: the server sent more than the 100 bytes; refusing the download/);
    await expectRefusal(lfs(100, { headers: { 'content-length': '500' }, body: more }), /model\.safetensors: the download is 500 bytes, over the 100 bytes declared for it/);
    await expectRefusal(repo((f) => (f === 'model.safetensors' ? { headers: { 'x-repo-commit': C, etag: `"${sha256(WEIGHTS)}"` }, body: WEIGHTS } : undefined)),
      /model\.safetensors: the answer declares no size .* for a weights file; refusing an unbounded download/);
  });

  it('an LFS download within its declared size is accepted', async () => {
    const server = await startRawServer(lfs(WEIGHTS.length, { body: WEIGHTS }));
    try {
      const snap = await resolveModelPath('acme/x', { cacheDir: tempDir('hub-size'), endpoint: server.endpoint });
      assert.deepEqual(new Uint8Array(readFileSync(join(snap, 'model.safetensors'))), WEIGHTS);
    } finally {
      await server.close();
    }
  });
});
