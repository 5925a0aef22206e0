/**
 * rediss:// for real: a TLS-only redis-server with a password and a
 * self-signed certificate; a worker and a grid (each a process that trusts the
 * certificate through NODE_EXTRA_CA_CERTS) run a grid over it, and a client
 * that does not trust it is told why.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runGrid } from '../../src/train/grid.js';
import { ROOT } from '../helpers.js';
import { startRedis, type TestRedis } from './redis.js';

const KEY = 'tls-test-key-0123456789abcdef';
const FLAKY = join(ROOT, 'test', 'fixtures', 'queue', 'flaky-recipe.mjs');

describe('runGrid over rediss://', { timeout: 120_000 }, () => {
  let redis: TestRedis & { ca?: string };
  let worker: ChildProcess;
  let log = '';

  before(async () => {
    redis = await startRedis({ password: 'tls pass', tls: true });
    assert.match(redis.url, /^rediss:\/\/:tls%20pass@127\.0\.0\.1:\d+\/0$/);
    worker = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'train', 'queue', 'worker-main.js'), '--queue', redis.workerUrl, '--backend', 'cpu', '--name', 'tls-worker'], {
      env: { ...process.env, ...redis.workerEnv, SHARELORA_QUEUE_KEY: KEY, NODE_EXTRA_CA_CERTS: redis.ca }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    worker.stderr!.on('data', (b) => { log += b; });
  });
  after(async () => {
    const exited = new Promise((r) => worker.once('exit', r));
    worker.kill('SIGTERM');
    assert.equal(await exited, 0, log);
    await redis.stop();
  });

  it('runs a grid through TLS with a password', async () => {
    const script = `const { runGrid } = await import(${JSON.stringify(join(ROOT, 'dist', 'src', 'train', 'grid.js'))});
      const t = await runGrid({ x: [1, 3] }, ${JSON.stringify(FLAKY)}, { queue: { url: ${JSON.stringify(redis.url)}, key: ${JSON.stringify(KEY)}, pollMs: 100 }, name: 'tls', log: false });
      console.log(JSON.stringify(t.array('y')));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, NODE_EXTRA_CA_CERTS: redis.ca } });
    assert.deepEqual(JSON.parse(stdout.trim()), [10, 30]);
    assert.match(log, /worker tls-worker ready on rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0/);
    assert.match(log, /done tls\.[0-9a-f]+ \(tls \[2\/2\]/);
  });

  it('says why when the certificate is not trusted', async () => {
    await assert.rejects(runGrid({ x: [1] }, FLAKY, { queue: { url: redis.url, key: KEY }, log: false }),
      /cannot use Redis at rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0: self[- ]signed certificate.*NODE_EXTRA_CA_CERTS/);
  });
});
