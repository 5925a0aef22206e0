/** The queue's pieces that need no Redis: URLs, canonical JSON, signatures, refusals, recipes, option checks. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRedisUrl, redactUrl } from '../../src/train/queue/redis-url.js';
import { canonicalJson, metricsFromWire, metricsToWire } from '../../src/train/queue/canonical.js';
import { keyId, resolveKey } from '../../src/train/queue/sign.js';
import { jobId, makeJobData, refuseReason } from '../../src/train/queue/job.js';
import { readRecipe } from '../../src/train/queue/recipe.js';
import { parseWorkerArgs } from '../../src/train/queue/worker-cli.js';
import { checkQueueOptions } from '../../src/train/queue/client.js';
import { runGrid } from '../../src/train/grid.js';
import { ROOT } from '../helpers.js';

const KEY = 'a-test-key-of-32-characters-long';
const FLAKY = join(ROOT, 'test', 'fixtures', 'queue', 'flaky-recipe.mjs');

describe('queue: Redis URLs', () => {
  it('parses host, port, db, user, password and TLS', () => {
    assert.deepEqual(parseRedisUrl('redis://h.example:6380/2'), { host: 'h.example', port: 6380, db: 2 });
    assert.deepEqual(parseRedisUrl('redis://127.0.0.1'), { host: '127.0.0.1', port: 6379, db: 0 });
    assert.deepEqual(parseRedisUrl('redis://:p%40ss%3Aw@h:1/0'), { host: 'h', port: 1, db: 0, password: 'p@ss:w' });
    assert.deepEqual(parseRedisUrl('rediss://bob:pw@cache.example:6390/1'), { host: 'cache.example', port: 6390, db: 1, username: 'bob', password: 'pw', tls: { servername: 'cache.example' } });
    assert.deepEqual(parseRedisUrl('rediss://10.0.0.5:6390').tls, {});
    assert.deepEqual(parseRedisUrl('redis://[::1]:7000/3'), { host: '::1', port: 7000, db: 3 });
  });
  it('refuses what it would otherwise get wrong, without echoing the password', () => {
    assert.throws(() => parseRedisUrl('http://h:6379'), /unsupported scheme "http:".*redis:\/\/\[user:password@\]host/);
    assert.throws(() => parseRedisUrl('redis://h:6379/zero'), /database .* must be a number/);
    assert.throws(() => parseRedisUrl('redis://:secret@h:6379/0?tls=true'), (e: Error) => /query or fragment/.test(e.message) && !e.message.includes('secret'));
    assert.throws(() => parseRedisUrl('h:6379'), /unsupported scheme/);
    assert.throws(() => parseRedisUrl(''), /expected a Redis URL/);
    assert.equal(redactUrl('redis://:secret@h:1/0'), 'redis://:***@h:1/0');
    assert.equal(redactUrl('rediss://bob:secret@h:1/0'), 'rediss://bob:***@h:1/0');
  });
});

describe('queue: canonical JSON and metrics on the wire', () => {
  it('sorts keys at every depth, so equal configurations give equal ids', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: 'x' }], z: null }), '{"a":[{"c":"x","d":2}],"b":1,"z":null}');
    const recipe = { file: 'r.mjs', export: 'run', hash: 'h', source: '' };
    assert.equal(jobId('g', recipe, { r: 4, share: 'A' }), jobId('g', recipe, { share: 'A', r: 4 }));
    assert.notEqual(jobId('g', recipe, { r: 4 }), jobId('g', recipe, { r: 8 }));
    assert.notEqual(jobId('g', recipe, { r: 4 }), jobId('g2', recipe, { r: 4 }));
    assert.notEqual(jobId('g', recipe, { r: 4 }), jobId('g', { ...recipe, hash: 'h2' }, { r: 4 }));
    assert.match(jobId('g', recipe, { r: 4 }), /^g\.[0-9a-f]{32}$/);
  });
  it('refuses values JSON would change, naming the setting', () => {
    assert.throws(() => canonicalJson({ targets: /c_attn/ }, 'config'), /config\.targets is a RegExp.*"c_attn"/);
    assert.throws(() => canonicalJson({ lr: NaN }, 'config'), /config\.lr is NaN/);
    assert.throws(() => canonicalJson({ f: () => 1 }, 'config'), /config\.f is a function/);
    assert.throws(() => canonicalJson({ a: [undefined] }, 'config'), /config\.a\[0\] is undefined/);
  });
  it('carries NaN and ±Infinity metrics through JSON', () => {
    const m = { loss: NaN, best: Infinity, worst: -Infinity, curve: [1, NaN], nested: { a: 0.5 } };
    const back = metricsFromWire(JSON.parse(JSON.stringify(metricsToWire(m))));
    assert.deepEqual(back, m);
    assert.throws(() => metricsToWire({ t: new Float32Array(2) }), /metrics\.t is a Float32Array.*Array\.from/);
  });
});

describe('queue: signatures', () => {
  const recipe = { file: 'r.mjs', export: 'run', hash: '', source: 'export async function run() { return 1; }' };
  recipe.hash = readRecipeHash(recipe.source);
  const good = makeJobData('g', recipe, { r: 4 }, 0, 1, KEY);

  it('accepts a job signed with the key, and nothing altered', () => {
    assert.equal(refuseReason(JSON.parse(JSON.stringify(good)), KEY), undefined);
  });
  it('refuses unsigned, altered, re-signed-with-another-key and malformed jobs, saying why', () => {
    const { sig: _, ...unsigned } = good;
    assert.match(refuseReason(unsigned, KEY)!, /not signed; only runGrid with the same SHARELORA_QUEUE_KEY/);
    assert.match(refuseReason({ ...good, config: { r: 8 } }, KEY)!, /altered after it was signed \(or forged\)/);
    const evil = 'export async function run() { process.exit(1); }';
    assert.match(refuseReason({ ...good, recipe: { ...recipe, source: evil } }, KEY)!, /altered after it was signed/);
    assert.match(refuseReason({ ...good, grid: 'other' }, KEY)!, /altered/);
    assert.match(refuseReason({ ...good, recipe: { ...recipe, export: 'other' } }, KEY)!, /altered/);
    const other = makeJobData('g', recipe, { r: 4 }, 0, 1, 'another-key-of-enough-length');
    assert.match(refuseReason(other, KEY)!, new RegExp(`key id "${keyId('another-key-of-enough-length')}", this worker's key id is ${keyId(KEY)}`));
    assert.match(refuseReason({ ...good, sig: 'zz' }, KEY)!, /altered|forged/);
    assert.match(refuseReason({ hello: 1 }, KEY)!, /not a sharelora grid job/);
    assert.match(refuseReason(null, KEY)!, /not a sharelora grid job/);
  });
  it('needs a key of some length', () => {
    const saved = process.env.SHARELORA_QUEUE_KEY;
    delete process.env.SHARELORA_QUEUE_KEY;
    try {
      assert.throws(() => resolveKey('runGrid'), /must be signed: set SHARELORA_QUEUE_KEY/);
      assert.throws(() => resolveKey('runGrid', 'short'), /at least 16 characters/);
      assert.equal(resolveKey('runGrid', KEY), KEY);
    } finally {
      if (saved !== undefined) process.env.SHARELORA_QUEUE_KEY = saved;
    }
  });
});

function readRecipeHash(source: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sharelora-recipe-'));
  writeFileSync(join(dir, 'r.mjs'), source);
  return readRecipe(join(dir, 'r.mjs')).hash;
}

describe('queue: recipes and options', () => {
  it('explains recipes that cannot travel', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sharelora-recipe-'));
    writeFileSync(join(dir, 'rel.mjs'), "import { helper } from './helper.js';\nexport async function run() { return helper(); }\n");
    assert.throws(() => readRecipe(join(dir, 'rel.mjs')), /imports '\.\/helper\.js'; a recipe travels to workers as one file/);
    assert.throws(() => readRecipe(join(dir, 'missing.mjs')), /recipe .*missing\.mjs not found/);
    assert.throws(() => readRecipe(join(dir, 'r.ts')), /must be an ES module file \(\.mjs or \.js\)/);
    assert.throws(() => readRecipe({ module: FLAKY, exprt: 'run' } as never), /unknown option "exprt"; did you mean "export"\?/);
  });
  it('runs a recipe in-process with the same rules as a worker', async () => {
    const t = await runGrid({ x: [1, 2, 3] }, FLAKY, { log: false, onError: 'record' });
    assert.deepEqual(t.array('y'), [10, null, 30]);
    assert.deepEqual(t.array('error'), [null, 'x=2 is broken (attempt 1)', null]);
    await assert.rejects(runGrid({ x: [1] }, { module: FLAKY, export: 'nope' }, { log: false }), /has no exported function "nope" \(its exports: run\)/);
    await assert.rejects(runGrid({ x: [/re/] }, FLAKY, { log: false }), /config\.x is a RegExp/);
    await assert.rejects(runGrid({ x: [1] }, () => ({ y: 1 }), { log: false, queue: 'redis://127.0.0.1:1/0' }), /needs a recipe module, not a function/);
  });
  it('checks queue options and worker flags, naming the closest valid one', () => {
    assert.throws(() => checkQueueOptions({ url: 'redis://h', atempts: 2 }), /unknown option "atempts"; did you mean "attempts"\?/);
    assert.throws(() => checkQueueOptions({ url: 'redis://h', attempts: 0 }), /attempts must be an integer ≥ 1; got 0/);
    assert.deepEqual(checkQueueOptions('redis://h'), { url: 'redis://h', key: undefined, attempts: 3, backoffMs: 10_000, pollMs: 1000 });
    assert.throws(() => parseWorkerArgs(['--queue', 'redis://h', '--concurency', '2']), /unknown option --concurency; did you mean --concurrency\?/);
    assert.throws(() => parseWorkerArgs(['--backend', 'cpu']), /--queue is required/);
    assert.throws(() => parseWorkerArgs(['--queue', 'redis://h', '--concurrency', 'two']), /--concurrency must be an integer ≥ 1; got "two"/);
    assert.throws(() => parseWorkerArgs(['--queue']), /--queue needs a value/);
    assert.deepEqual(parseWorkerArgs(['--queue=redis://h', '--backend', 'cpu', '--concurrency', '2', '--lock-duration', '5000', '--grace', '0']), {
      options: { queue: 'redis://h', backend: 'cpu', concurrency: 2, lockDurationMs: 5000 }, graceS: 0,
    });
    assert.equal(parseWorkerArgs(['--help']), 'help');
  });
});
