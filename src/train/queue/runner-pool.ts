/**
 * The worker's side of runner.ts: start a runner process, hand it one run at a
 * time, relay its progress, and report its death as the run's error.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RUNNER_BACKEND_ENV } from '../../backend/flags.js';
import { clip } from '../grid-rows.js';
import type { FromRunner, ToRunner } from './runner-messages.js';
import { KEY_ENV } from './sign.js';

/**
 * Secrets the worker holds and the recipe has no use for: the signing key
 * (a recipe that read it could sign jobs of its own) and the Redis password
 * a worker may take from REDISCLI_AUTH.
 */
const WITHHELD = [KEY_ENV, 'REDISCLI_AUTH'];

const RUNNER = fileURLToPath(new URL('./runner.js', import.meta.url));

export class RunnerDied extends Error {
  constructor(how: string) {
    super(`the runner process died (${how}) during this run: the backend crashed (a wasm abort, out of memory) or the process was killed`);
    this.name = 'RunnerDied';
  }
}

export class Runner {
  private exit?: string;
  /** set when the process may be damaged (an error thrown outside any run): it ends after its run */
  retiring = false;
  private current?: { resolve: (metrics: unknown) => void; reject: (e: Error) => void; progress: (p: unknown) => void };

  private constructor(private readonly proc: ChildProcess, readonly backend: { name: string; device: string }, log: (line: string) => void) {
    proc.on('message', (m: FromRunner) => {
      if (m.type === 'stray') {
        this.retiring = true;
        log(`runner ${proc.pid}: ${clip(m.message, 2000)}`);
        return;
      }
      if (m.type === 'error' && m.retire) this.retiring = true;
      const c = this.current;
      if (!c) return;
      if (m.type === 'progress') c.progress(m.p);
      else if (m.type === 'done') { this.current = undefined; c.resolve(m.metrics); }
      else if (m.type === 'error') {
        this.current = undefined;
        const e = new Error(m.message);
        if (m.stack) e.stack = m.stack;
        c.reject(e);
      }
    });
    proc.on('exit', (code, signal) => {
      this.exit = signal ? `signal ${signal}` : `exit code ${code}`;
      this.current?.reject(new RunnerDied(this.exit));
      this.current = undefined;
    });
  }

  /** Start a runner on `backend` and wait until it has loaded the library. */
  static start(backend: string, log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): Promise<Runner> {
    const env: NodeJS.ProcessEnv = { ...process.env, [RUNNER_BACKEND_ENV]: backend };
    for (const name of WITHHELD) delete env[name];
    const proc = fork(RUNNER, [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null, signal: string | null) => reject(new Error(`the runner process exited while starting (${signal ?? `exit code ${code}`})`));
      proc.once('exit', onExit);
      proc.once('message', (m: FromRunner) => {
        proc.off('exit', onExit);
        if (m.type === 'ready') resolve(new Runner(proc, m.backend, log));
        else {
          proc.kill('SIGKILL');
          reject(new Error(m.type === 'error' ? m.message : `the runner sent ${m.type} before ready`));
        }
      });
    });
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  run(m: ToRunner, progress: (p: unknown) => void): Promise<unknown> {
    if (this.current) throw new Error('Runner.run: a run is already in progress');
    if (!this.alive) return Promise.reject(new RunnerDied(this.exit!));
    return new Promise((resolve, reject) => {
      this.current = { resolve, reject, progress };
      this.proc.send(m);
    });
  }

  /** End the process (and so any run in it) now. */
  kill(): void {
    if (this.alive) this.proc.kill('SIGKILL');
  }
}
