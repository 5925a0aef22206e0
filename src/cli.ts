#!/usr/bin/env node
/**
 * The `sharelora` command. Each subcommand loads its own modules when it
 * runs, so `sharelora worker` never pays for the TypeScript compiler that
 * `sharelora run` needs, and `--help` loads nothing.
 *
 * Exit status: 0 done, 1 the work failed (a notebook cell raised), 2 the
 * command line was wrong.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flags } from './backend/flags.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

// Taken before `run` starts a kernel session, which routes process.stdout/stderr into notebook cells.
const out = process.stdout.write.bind(process.stdout);
const err = process.stderr.write.bind(process.stderr);

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

interface Command {
  summary: string;
  usage: string;
  main(argv: string[]): Promise<number>;
}

const RUN_USAGE = `usage: sharelora run <notebook.ipynb> (--out file | --in-place) [-p name=value ...] [--backend name] [--timeout seconds] [--progress-every seconds] [--verbatim] [--quiet]

Executes every code cell of a notebook in this process with the sharelora
kernel's runtime (the same preloaded names, displays, progress bars and
errors as in Jupyter) and writes the outputs into a notebook. Jupyter is
not needed.

  -o, --out file              write the executed notebook here (checked before anything runs)
  --in-place                  write it over the input, replacing its saved outputs; a run that
                              fails leaves the input as it was and writes <name>.failed.ipynb
                              beside it. One of --out and --in-place is required; with
                              SHARELORA_SMOKE=1 only --out, so a smoke run never replaces the
                              outputs of a full run
  -p, --parameter name=value  set a parameter (papermill's convention): the cell
                              tagged "parameters" declares the defaults; the values
                              go into a new cell after it, tagged "injected-parameters".
                              A value is JSON if it parses as JSON, else a string.
                              Names the parameters cell does not declare are an error.
  --backend name              auto, webgpu, wasm, cpu, tfjs-node-gpu or tfjs-node
                              (default: SHARELORA_BACKEND, else auto); the run stops if
                              the named backend cannot start
  --timeout seconds           interrupt a cell that runs longer (default: no limit)
  --progress-every seconds    while a cell runs, a line this often with its latest output
                              (default 30)
  --verbatim                  save the outputs exactly as Jupyter would; by default each
                              figure is saved as plotly JSON + PNG, without plotly.js
                              (4.8 MB), its HTML or the live training plots, so the
                              notebook stays small and shows its figures on GitHub
  -q, --quiet                 no progress lines on stderr

A cell that raises stops the run with exit status 1: the notebook is still
written (to --out, or to <name>.failed.ipynb with --in-place), with the
outputs so far and the error.`;

const BACKENDS = ['auto', 'webgpu', 'wasm', 'cpu', 'tfjs-node-gpu', 'tfjs-node'];

async function runMain(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        parameter: { type: 'string', short: 'p', multiple: true },
        out: { type: 'string', short: 'o' },
        'in-place': { type: 'boolean' },
        backend: { type: 'string' },
        timeout: { type: 'string' },
        'progress-every': { type: 'string' },
        quiet: { type: 'boolean', short: 'q' },
        verbatim: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    out(`${RUN_USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`expected one notebook, got ${positionals.length ? positionals.join(' ') : 'none'}`);
  const input = positionals[0]!;
  if (!input.endsWith('.ipynb')) throw new UsageError(`${input}: expected a .ipynb file`);
  if (v.backend !== undefined && !BACKENDS.includes(v.backend)) throw new UsageError(`--backend ${v.backend}: expected one of ${BACKENDS.join(', ')}`);
  let timeoutS: number | undefined;
  if (v.timeout !== undefined) {
    timeoutS = Number(v.timeout);
    if (!(timeoutS > 0)) throw new UsageError(`--timeout ${v.timeout}: expected a positive number of seconds`);
  }
  let progressEveryS: number | undefined;
  if (v['progress-every'] !== undefined) {
    progressEveryS = Number(v['progress-every']);
    if (!(progressEveryS > 0 && progressEveryS < Infinity)) throw new UsageError(`--progress-every ${v['progress-every']}: expected a positive number of seconds`);
  }
  if (v.out !== undefined && v['in-place']) throw new UsageError('--out and --in-place: give one of them');
  if (v.out === undefined && flags.smoke) {
    throw new UsageError('SHARELORA_SMOKE=1 without --out would replace the notebook\'s saved outputs with a smoke run\'s; pass --out');
  }
  if (v.out === undefined && !v['in-place']) {
    throw new UsageError(`${input}: where should the executed notebook go? --out file writes it there; --in-place replaces ${input}'s saved outputs`);
  }

  const { parseParameterArgs, ParameterError } = await import('../kernel/parameters.js');
  let parameters: Record<string, unknown>;
  try {
    parameters = parseParameterArgs(v.parameter ?? []);
  } catch (e) {
    if (e instanceof ParameterError) throw new UsageError(e.message);
    throw e;
  }
  const { runNotebook, NotebookOutputError } = await import('../kernel/run.js');
  const { NotebookFormatError } = await import('../kernel/notebook-file.js');
  let result;
  try {
    result = await runNotebook({
      input, ...(v.out !== undefined ? { output: v.out } : { inPlace: true }), parameters, backend: v.backend, timeoutS, progress: !v.quiet, progressEveryS, verbatim: v.verbatim,
    });
  } catch (e) {
    // the input, the parameters or the output: found before any cell ran, and said without a stack
    if (e instanceof ParameterError || e instanceof NotebookFormatError || e instanceof NotebookOutputError) throw new UsageError(e.message);
    throw e;
  }
  const { closeBrowser } = await import('./notebook/chromium.js');
  await closeBrowser().catch(() => {});
  const f = result.failed;
  if (f) {
    const why = f.timedOut ? `ran past --timeout ${timeoutS} s and was interrupted (${f.ename})` : `${f.ename}: ${f.evalue}`;
    err(`sharelora run: ${input}: cell ${f.index} failed (${JSON.stringify(f.firstLine)}): ${why}\n`);
    if (f.traceback.length > 1) err(`${f.traceback.slice(1).join('\n')}\n`);
    err(`sharelora run: wrote ${result.output} with the outputs up to that cell and its error${result.inPlace ? ` (${input} is unchanged)` : ''}\n`);
    return 1;
  }
  if (!v.quiet) err(`sharelora run: ${result.executed} code cells in ${result.seconds.toFixed(1)} s; wrote ${result.output}\n`);
  return 0;
}

const COMMANDS: Record<string, Command> = {
  run: { summary: 'execute a notebook headless and save its outputs', usage: RUN_USAGE, main: runMain },
  // Loaded on demand: the worker pulls in BullMQ (optional), which `run` never needs.
  worker: {
    summary: 'run grid jobs from a BullMQ queue (see README: More than one machine)',
    usage: 'usage: sharelora worker --queue redis://host:6379/0 [--backend webgpu] [--concurrency 1] [--key …]\n(`sharelora worker --help` for every option)',
    main: async (argv) => {
      const { workerMain } = await import('./train/queue/worker-cli.js');
      try {
        return await workerMain(argv);
      } catch (e) {
        // a command-line mistake: its message already holds the usage, a stack would bury it
        if (!(e instanceof Error) || !e.message.startsWith('sharelora worker:')) throw e;
        err(`${e.message}\n`);
        return 2;
      }
    },
  },
};

function version(): string {
  return (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    `sharelora ${version()}: ShareLoRA (arXiv 2406.10785) in TypeScript`,
    '',
    'usage: sharelora <command> [options]',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'sharelora <command> --help shows a command\'s options.',
    'The Jupyter kernel: npm start (or node dist/kernel/install.js to only register it).',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    const topic = cmd === 'help' ? rest[0] : undefined;
    if (topic !== undefined && !(topic in COMMANDS)) throw new UsageError(`help: no command ${JSON.stringify(topic)}`);
    out(`${topic ? COMMANDS[topic]!.usage : help()}\n`);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === '--version' || cmd === '-V') {
    out(`${version()}\n`);
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (!command) throw new UsageError(`unknown command ${JSON.stringify(cmd)} (commands: ${Object.keys(COMMANDS).join(', ')})`);
  return command.main(rest);
}

// npm links bin entries as symlinks (node_modules/.bin/sharelora), so compare real paths.
const invokedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      if (e instanceof UsageError) {
        err(`sharelora: ${e.message}\nsharelora --help lists the commands; sharelora <command> --help their options.\n`);
        process.exit(2);
      }
      err(`sharelora: ${(e as Error)?.stack ?? e}\n`);
      process.exit(1);
    },
  );
}
