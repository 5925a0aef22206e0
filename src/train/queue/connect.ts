/**
 * BullMQ is an optional dependency, loaded only when a grid uses a queue, so
 * library-only users neither install nor load it.
 */
import { createRequire } from 'node:module';
import { parseRedisUrl, redactUrl, type RedisConnection } from './redis-url.js';

export type BullMQ = typeof import('bullmq');

/** The few ioredis calls we make ourselves (BullMQ's client is an abstraction without them). */
export interface RedisClient {
  on(event: 'error', f: (e: Error) => void): void;
  connect(): Promise<void>;
  ping(): Promise<string>;
  info(section: string): Promise<string>;
  zmscore(key: string, ...members: string[]): Promise<(string | null)[]>;
  lrange(key: string, start: number, stop: number): Promise<string[]>;
  hmget(key: string, ...fields: string[]): Promise<(string | null)[]>;
  pipeline(): { exists(key: string): unknown; exec(): Promise<[Error | null, unknown][] | null> };
  quit(): Promise<unknown>;
  disconnect(): void;
}

const INSTALL = 'npm install --save-exact bullmq@5.81.5';

export async function loadBullMQ(): Promise<BullMQ> {
  try {
    return await import('bullmq');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && /bullmq/.test((e as Error).message)) {
      throw new Error(`a queued grid needs the optional package bullmq, which is not installed: ${INSTALL}`);
    }
    throw e;
  }
}

/** Options for BullMQ's own connections: it requires maxRetriesPerRequest null on workers. */
export function bullConnection(c: RedisConnection): Record<string, unknown> {
  return { ...c, maxRetriesPerRequest: null };
}

/** An ioredis client (ioredis comes with bullmq; resolve it from there rather than depend on it ourselves). */
export async function redisClient(conn: RedisConnection, probe: boolean): Promise<RedisClient> {
  await loadBullMQ();
  const require = createRequire(import.meta.resolve('bullmq'));
  const Redis = require('ioredis') as new (o: object) => RedisClient;
  const extra = probe ? { maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false } : {};
  return new Redis({ ...conn, lazyConnect: true, connectTimeout: 10_000, ...extra });
}

/**
 * Connect once, without retries, and say clearly why it failed; BullMQ's own
 * connections retry forever, which would make a wrong URL look like a hang.
 */
export async function checkRedis(url: string): Promise<RedisConnection> {
  const conn = parseRedisUrl(url);
  const r = await redisClient(conn, true);
  // ioredis rejects connect() with "Connection is closed." and reports the cause (WRONGPASS, ECONNREFUSED) as an event
  let cause: Error | undefined;
  r.on('error', (e) => { cause ??= e; });
  let version: string | undefined;
  try {
    await r.connect();
    await r.ping();
    version = /^redis_version:(\S+)/m.exec(await r.info('server'))?.[1];
  } catch (e) {
    const msg = (cause ?? (e as Error)).message;
    const hint = /NOAUTH|WRONGPASS|invalid password|invalid username/i.test(msg) ? 'check the user and password in the URL (redis://:PASSWORD@host:6379/0)'
      : /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|timeout/i.test(msg) ? 'is redis-server running there and reachable from this machine? (redis-server --port 6379 --bind 0.0.0.0 --requirepass …)'
      : /SSL|TLS|certificate|EPROTO/i.test(msg) ? 'rediss:// needs a TLS server whose certificate this machine trusts (NODE_EXTRA_CA_CERTS for a private CA)'
      : 'check the URL';
    throw new Error(`cannot use Redis at ${redactUrl(url)}: ${msg}; ${hint}`);
  } finally {
    r.disconnect();
  }
  // ZMSCORE (how a grid follows its jobs) came in Redis 6.2
  const [major = 0, minor = 0] = (version ?? '0').split('.').map(Number);
  if (major < 6 || (major === 6 && minor < 2)) throw new Error(`Redis at ${redactUrl(url)} is version ${version ?? 'unknown'}; a grid queue needs Redis 6.2 or newer`);
  return conn;
}
