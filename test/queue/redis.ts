/** A real redis-server on a free loopback port with a temporary folder, for the queue tests and the load bench. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../net.js';

export interface TestRedis {
  port: number;
  /** redis://[:password@]127.0.0.1:port/0 */
  url: string;
  /** the same without the password: what a worker's --queue takes (the password goes in REDISCLI_AUTH) */
  workerUrl: string;
  /** the worker's environment entries for the password ({} without one) */
  workerEnv: Record<string, string>;
  dir: string;
  stop(): Promise<void>;
  /** persist only: stop the server (its data kept on disk) / start it again on the same port with that data */
  down(): Promise<void>;
  up(): Promise<void>;
}


/** tls: serve TLS only, with a fresh self-signed certificate for 127.0.0.1 (its path in `ca`) */
export async function startRedis(opts: { password?: string; tls?: boolean; persist?: boolean } = {}): Promise<TestRedis & { ca?: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'sharelora-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no',
    ...(opts.persist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'])];
  if (opts.password) args.push('--requirepass', opts.password);
  let ca: string | undefined;
  if (opts.tls) {
    ca = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', ca, '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    args.splice(0, 2, '--port', '0', '--tls-port', String(port), '--tls-cert-file', ca, '--tls-key-file', join(dir, 'key.pem'), '--tls-auth-clients', 'no');
  }
  let proc!: ChildProcess;
  const launch = async () => {
    try {
      proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      throw new Error(`cannot start redis-server (apt-get install redis-server): ${(e as Error).message}`);
    }
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start within 20 s:\n${out}`)), 20_000);
      const onData = (b: Buffer) => {
        out += b.toString();
        if (out.includes('Ready to accept connections')) { clearTimeout(timer); resolve(); }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot start redis-server (apt-get install redis-server): ${e.message}`)); });
      proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`redis-server exited with ${code}:\n${out}`)); });
    });
  };
  const halt = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
  };
  await launch();
  const url = `${opts.tls ? 'rediss' : 'redis'}://${opts.password ? `:${encodeURIComponent(opts.password)}@` : ''}127.0.0.1:${port}/0`;
  const workerUrl = `${opts.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}/0`;
  return {
    port, url, workerUrl, workerEnv: opts.password ? { REDISCLI_AUTH: opts.password } : {}, dir, ca,
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
    down: halt,
    up: launch,
  };
}
