/** The queue's pieces that need no Redis: URLs, canonical JSON, signatures, refusals, recipes, option checks. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRedisUrl, redactUrl } from '../../src/train/queue/redis-url.js';
import { canonicalJson, metricsFromWire, metricsToWire } from '../../src/train/queue/canonical.js';
import { keyId, resolveKey } from '../../src/train/queue/sign.js';
import { checkJob, checkResult, jobId, makeJobData, refuseReason, SIGNATURE_TTL_MS, signResult } from '../../src/train/queue/job.js';
import { readRecipe } from '../../src/train/queue/recipe.js';
import { parseWorkerArgs, queueUrlWithPassword } from '../../src/train/queue/worker-cli.js';
import { gridLogLine, gridRow } from '../../src/train/grid-rows.js';
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
  it('hides the password in every form new URL accepts', () => {
    const forms = ['REDIS://:SecretPW@h:1/0', ' redis://:SecretPW@h:1/0', '\tredis://:SecretPW@h:1/0', 'redis://:Wrong@SecretPW@h:1/0',
      'Rediss://bob:SecretPW@h:1/0', 'redis://:Secret\tPW@h:1/0', 'redis:/:SecretPW@h:1/0', 'redis:\\\\:SecretPW@h:1/0', 'redis://SecretPW@h:1/0',
      'redis://:Se/cretPW@h:1/0', '\u0000 redis://:SecretPW@h', 'redis://:SecretPW@h:1/0?x=1#y', 're\ndis://:SecretPW@h:1/0'];
    for (const url of forms) {
      let accepted = true;
      try { new URL(url); } catch { accepted = false; }
      const shown = redactUrl(url);
      assert.ok(!shown.includes('SecretPW') && !shown.includes('Secret') && !/[\x00-\x1f]/.test(shown), `${JSON.stringify(url)} (new URL ${accepted ? 'accepts' : 'refuses'} it) → ${shown}`);
      for (const f of [() => parseRedisUrl(url)]) {
        try { f(); } catch (e) { assert.ok(!(e as Error).message.includes('Secret'), (e as Error).message); }
      }
    }
    assert.equal(redactUrl('REDIS://:Wrong@SecretPW@h:1/0'), 'REDIS://:***@h:1/0');
    assert.equal(redactUrl('redis://h:1/0'), 'redis://h:1/0');
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
    // only what metricsToWire writes decodes to a number
    assert.deepEqual(metricsFromWire({ x: { '$sharelora.nonFinite': '42' } }), { x: { '$sharelora.nonFinite': '42' } });
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
  it('binds the job id and every field the runner reads, and expires', () => {
    const copy = JSON.parse(JSON.stringify(good));
    assert.equal(refuseReason(copy, KEY, good.id), undefined);
    assert.match(refuseReason(copy, KEY, 'g.replayed')!, /signed as "g\.[0-9a-f]{32}", not for this id/);
    for (const [field, value] of [['index', 1], ['total', 5], ['timeoutMs', 1], ['expires', good.expires + 1], ['id', 'g.other']] as const) {
      assert.match(refuseReason({ ...copy, [field]: value, ...(field === 'index' && { total: 2 }) }, KEY)!, /altered after it was signed/, field);
    }
    assert.match(refuseReason({ ...copy, recipe: { ...recipe, file: 'other.mjs' } }, KEY)!, /altered after it was signed/);
    assert.match(refuseReason(copy, KEY, good.id, good.expires + 1)!, /signature expired at .*run the grid again/);
    const t0 = Date.now();
    const fresh = makeJobData('g', recipe, { r: 4 }, 0, 1, KEY, { timeoutMs: 5000 });
    assert.ok(fresh.expires >= t0 + SIGNATURE_TTL_MS && fresh.timeoutMs === 5000);
  });
  it('a key this worker lacks leaves the job for another worker; everything else is final', () => {
    const other = makeJobData('g', recipe, { r: 4 }, 0, 1, 'another-key-of-enough-length');
    const c = checkJob(other, KEY);
    assert.ok(!c.ok && c.leave && /left for a worker with that key/.test(c.reason));
    const forged = checkJob({ ...good, config: { r: 8 } }, KEY);
    assert.ok(!forged.ok && !forged.leave);
  });
  it('signs results for one job; the driver refuses unsigned, altered or transplanted ones', () => {
    const r = JSON.parse(JSON.stringify(signResult(good, { acc: 0.5 }, 'w1', 2.5, KEY)));
    assert.deepEqual(checkResult(r, good.id, good.sig, KEY), { ok: true, result: r });
    const no = (v: unknown, id = good.id, sig: unknown = good.sig) => { const c = checkResult(v, id, sig, KEY); return c.ok ? 'accepted' : c.reason; };
    assert.match(no({ metrics: { acc: 0.999 }, worker: 'wA', seconds: 1 }), /result refused: not signed/);
    assert.match(no({ ...r, metrics: { acc: 0.999 } }), /signature does not match/);
    assert.match(no({ ...r, worker: 'w2' }), /signature does not match/);
    assert.match(no(r, 'g.another'), /signature does not match/);
    assert.match(no(r, good.id, 'f'.repeat(64)), /signature does not match/);
    const byOther = signResult(good, { acc: 0.5 }, 'w1', 2.5, 'another-key-of-enough-length');
    assert.match(no(byOther), /signature does not match/);
    for (const junk of [null, 1, 'x', [], { worker: 'w' }, { metrics: 1, worker: 'w', seconds: -1, sig: r.sig }]) assert.match(no(junk), /not the result of a sharelora worker/);
  });
  it('needs a key of some length', () => {
    const saved = process.env.SHARELORA_QUEUE_KEY;
    delete process.env.SHARELORA_QUEUE_KEY;
    try {
      assert.throws(() => resolveKey('runGrid'), /must be signed: set SHARELORA_QUEUE_KEY/);
      assert.throws(() => resolveKey('runGrid', 'short'), /at least 16 characters/);
      assert.equal(resolveKey('runGrid', KEY), KEY);
      for (const weak of ['a'.repeat(16), 'a'.repeat(64), 'abababababababab', 'abcdabcdabcdabcd', '0000000000000001']) {
        assert.throws(() => resolveKey('runGrid', weak), /too easy to guess/, weak);
      }
      assert.equal(resolveKey('worker', '3f9c1a7be0d24c58'), '3f9c1a7be0d24c58', '16 random hex digits (openssl rand -hex 8)');
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
    assert.throws(() => readRecipe({ module: FLAKY, exprt: 'run' } as never), /runGrid recipe: option "exprt" is not an option; did you mean "export"\?/);
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
    assert.throws(() => checkQueueOptions({ url: 'redis://h', atempts: 2 }), /runGrid queue: option "atempts" is not an option; did you mean "attempts"\?/);
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
  it('takes the worker\'s Redis password from REDISCLI_AUTH or a file, never from the URL', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sharelora-pw-'));
    writeFileSync(join(dir, 'pw'), 'p@ss word/:x\n');
    writeFileSync(join(dir, 'empty'), '\n');
    assert.throws(() => queueUrlWithPassword('redis://:SecretPW@h:1/0', undefined, undefined), (e: Error) => /holds a password .*process list.*REDISCLI_AUTH.*--password-file/.test(e.message) && !e.message.includes('SecretPW'));
    const withFile = queueUrlWithPassword('redis://h:1/0', join(dir, 'pw'), 'from-env');
    assert.equal(parseRedisUrl(withFile).password, 'p@ss word/:x', 'the file wins over the variable');
    assert.equal(parseRedisUrl(queueUrlWithPassword('redis://bob@h:1/0', undefined, 'from-env')).password, 'from-env');
    assert.equal(parseRedisUrl(queueUrlWithPassword('redis://bob@h:1/0', undefined, 'from-env')).username, 'bob');
    assert.equal(queueUrlWithPassword('redis://h:1/0', undefined, undefined), 'redis://h:1/0');
    assert.throws(() => queueUrlWithPassword('redis://h:1/0', join(dir, 'empty'), undefined), /is empty/);
    assert.throws(() => queueUrlWithPassword('redis://h:1/0', join(dir, 'missing'), undefined), /cannot read --password-file .*ENOENT/);
  });
  it('refuses settings and metrics named like the table\'s own columns, in-process', async () => {
    await assert.rejects(runGrid({ seconds: [1] }, () => ({ y: 1 }), { log: false }), /setting is named "seconds", which is a column every grid table has/);
    await assert.rejects(runGrid({ error: [1] }, () => ({ y: 1 }), { log: false, onError: 'record' }), /setting is named "error"/);
    const t = await runGrid({ x: [1, 2] }, ({ x }) => (x === 1 ? { error: 0.1 } : { seconds: 3 }), { log: false, onError: 'record' });
    assert.deepEqual(t.array('error'), ['runGrid: metric "error" has the name of a column every grid table has (seconds, error); rename the metric',
      'runGrid: metric "seconds" has the name of a column every grid table has (seconds, error); rename the metric']);
    assert.ok((t.array('seconds') as number[]).every((v) => typeof v === 'number' && v < 1), 'seconds is the timing');
    await assert.rejects(runGrid({ x: [1] }, () => ({ error: 1 }), { log: false }), /metric "error" has the name of a column/);
    await assert.rejects(runGrid({ x: [1] }, () => JSON.parse('{"__proto__": 1}'), { log: false }), /"__proto__", which cannot be a column/);
    const r = await runGrid({ x: [1] }, FLAKY, { log: false, onError: 'record', name: 'reserved' });
    assert.deepEqual(r.array('y'), [10]);
  });
  it('times a run out in-process', async () => {
    const t = await runGrid({ x: [1, 2] }, ({ x }) => new Promise((res) => setTimeout(() => res({ y: x }), x === 1 ? 5 : 2000)), { log: false, onError: 'record', timeoutMs: 200 });
    assert.deepEqual(t.array('y'), [1, null]);
    assert.match((t.array('error') as string[])[1]!, /did not finish within timeoutMs = 200 ms/);
    await assert.rejects(runGrid({ x: [1] }, () => 1, { timeoutMs: 0 }), /timeoutMs must be an integer ≥ 1/);
  });
  it('keeps log lines short and on one line, whatever the metrics', () => {
    const huge = { blob: 'x'.repeat(5_000_000), obj: Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i])), ['evil\nline']: 1 };
    const row = gridRow(['x'], { x: 1 }, huge, undefined, 1);
    const line = gridLogLine(['x'], row, huge, undefined, 0, 1);
    assert.ok(line.length < 400 && !line.includes('\n'), line.slice(0, 500));
    const many = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`m${i}`, i]));
    assert.ok(gridLogLine(['x'], gridRow(['x'], { x: 1 }, many, undefined, 1), many, undefined, 0, 1).length < 400);
    const err = gridLogLine(['x'], gridRow(['x'], { x: 1 }, undefined, 'e'.repeat(1e6), 1), undefined, 'e'.repeat(1e6), 0, 1);
    assert.ok(err.length < 700, String(err.length));
  });
});
