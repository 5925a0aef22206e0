/**
 * `sharelora worker --queue redis://host:6379/0 [--password-file F] [--backend …] [--concurrency 1]`:
 * run grid jobs on this machine until stopped. SIGTERM (or SIGINT) stops taking
 * jobs and lets the running one finish for up to --grace seconds; a second
 * signal, or the end of the grace period, hands it back to the queue so another
 * worker runs it, and the process exits.
 *
 * The Redis password never goes on the command line, where every user of the
 * machine sees it (ps, /proc/<pid>/cmdline): it comes from REDISCLI_AUTH (the
 * variable redis-cli reads) or from a file.
 */
import { readFileSync } from 'node:fs';
import { closest } from '../../util/options.js';
import { redactUrl } from './redis-url.js';
import { startWorker, type WorkerOptions } from './worker.js';

const WORKER_USAGE = `usage: sharelora worker --queue redis://[user@]host[:port][/db] [options]

  --queue URL              the Redis that runGrid(…, { queue }) uses (rediss:// for TLS), without its password
  --password-file FILE     the Redis password, the file's first line (default: the REDISCLI_AUTH variable)
  --backend NAME           auto (default), webgpu, wasm, cpu, tfjs-node-gpu, tfjs-node
  --concurrency N          runs at once, each in its own process (default 1)
  --key SECRET             signing key (default: SHARELORA_QUEUE_KEY; prefer the variable, a flag shows in ps)
  --name NAME              this worker's name in the grid display (default host:pid)
  --grace SECONDS          after SIGTERM, let the running job finish this long before handing it back (default 60)
  --lock-duration MS       a job's lock without renewal (default 30000); a dead worker's job returns after about this
  --stalled-interval MS    how often to look for jobs of dead workers (default 15000)
  --max-stalled N          a job whose worker died more than N times fails (default 2)
`;

/** how long closing may take after the last signal before the process exits anyway */
const CLOSE_DEADLINE_S = 5;

const FLAGS = ['queue', 'password-file', 'backend', 'concurrency', 'key', 'name', 'grace', 'lock-duration', 'stalled-interval', 'max-stalled', 'help'] as const;
type Flag = (typeof FLAGS)[number];

/**
 * `url` with the password from `file` or `envPassword` (REDISCLI_AUTH); a
 * password written into the URL is refused, since it is already in ps.
 */
export function queueUrlWithPassword(url: string, file: string | undefined, envPassword: string | undefined): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url; // parseRedisUrl says what is wrong with it
  }
  if (u.password) {
    throw new Error(`sharelora worker: the --queue URL holds a password (${redactUrl(url)}), which every user of this machine can read in the process list; give the URL without it and the password in REDISCLI_AUTH or a file (--password-file)`);
  }
  let password = envPassword === '' ? undefined : envPassword;
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`sharelora worker: cannot read --password-file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    password = text.split(/\r?\n/)[0]!;
    if (password === '') throw new Error(`sharelora worker: --password-file ${file} is empty; its first line is the Redis password`);
  }
  if (password === undefined) return url;
  u.password = encodeURIComponent(password);
  return u.href;
}

export function parseWorkerArgs(argv: string[]): { options: WorkerOptions; graceS: number } | 'help' {
  const got: Partial<Record<Flag, string>> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new Error(`sharelora worker: unexpected argument "${arg}"\n\n${WORKER_USAGE}`);
    const eq = arg.indexOf('=');
    const flag = (eq < 0 ? arg.slice(2) : arg.slice(2, eq));
    if (!(FLAGS as readonly string[]).includes(flag)) throw new Error(`sharelora worker: unknown option --${flag}; did you mean --${closest(flag, FLAGS)!}?\n\n${WORKER_USAGE}`);
    if (flag === 'help') return 'help';
    const value = eq < 0 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined || (eq < 0 && value.startsWith('--'))) throw new Error(`sharelora worker: --${flag} needs a value`);
    got[flag as Flag] = value;
  }
  if (!got.queue) throw new Error(`sharelora worker: --queue is required\n\n${WORKER_USAGE}`);
  const int = (flag: Flag, min: number): number | undefined => {
    const v = got[flag];
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < min) throw new Error(`sharelora worker: --${flag} must be an integer ≥ ${min}; got "${v}"`);
    return Number(v);
  };
  const options: WorkerOptions = { queue: queueUrlWithPassword(got.queue, got['password-file'], process.env.REDISCLI_AUTH) };
  if (got.key !== undefined) options.key = got.key;
  if (got.backend !== undefined) options.backend = got.backend;
  if (got.name !== undefined) options.name = got.name;
  const c = int('concurrency', 1), l = int('lock-duration', 100), s = int('stalled-interval', 100), m = int('max-stalled', 0);
  if (c !== undefined) options.concurrency = c;
  if (l !== undefined) options.lockDurationMs = l;
  if (s !== undefined) options.stalledIntervalMs = s;
  if (m !== undefined) options.maxStalledCount = m;
  return { options, graceS: int('grace', 0) ?? 60 };
}

/** Run a worker until a signal stops it; resolves to the process exit code. */
export async function workerMain(argv: string[]): Promise<number> {
  const parsed = parseWorkerArgs(argv);
  if (parsed === 'help') {
    process.stdout.write(WORKER_USAGE);
    return 0;
  }
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const w = await startWorker({ ...parsed.options, log });
  return await new Promise<number>((resolveExit) => {
    let signals = 0;
    let timer: NodeJS.Timeout | undefined;
    const handBack = () => {
      if (timer) clearTimeout(timer);
      const ids = w.running();
      if (ids.length) log(`handing back ${ids.join(', ')}`);
      // with Redis gone, BullMQ's close waits for it forever: a signal must still end the process
      const deadline = setTimeout(() => {
        log(`could not hand back and close within ${CLOSE_DEADLINE_S} s (is Redis reachable?); exiting — a job still marked running returns to the queue when its lock lapses`);
        resolveExit(1);
      }, CLOSE_DEADLINE_S * 1000);
      void w.handBack().then(() => resolveExit(0), () => resolveExit(1)).finally(() => clearTimeout(deadline));
    };
    const onSignal = (sig: NodeJS.Signals) => {
      signals++;
      if (signals > 1) return handBack();
      const ids = w.running();
      log(`${sig}: taking no more jobs; ${ids.length ? `finishing ${ids.join(', ')} (up to ${parsed.graceS} s; signal again to hand it back now)` : 'none running'}`);
      // nothing to finish: only the close itself, which gets the same deadline
      timer = setTimeout(handBack, ids.length ? parsed.graceS * 1000 : 0);
      if (!ids.length) return;
      void w.close().then(() => { clearTimeout(timer); resolveExit(0); }, () => resolveExit(1));
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
