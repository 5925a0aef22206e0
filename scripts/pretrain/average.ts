/**
 * Weight averaging of saved models of one architecture (issue 20): the
 * element-wise weighted mean of their `model.safetensors`, written as a new
 * model folder (float16 like the inputs; the tokenizer and data files copied
 * from the first folder). Averaging the ends of two cosine cycles of one run is
 * stochastic weight averaging (Izmailov et al. 2018) in its simplest form.
 *
 * The mean's own training_stats.json and card (README.md) name the inputs, their
 * weights and scores; its held-out metrics are its own, from `--eval FILE` (the
 * JSON of `pretrain-causal.js eval --json` or `pretrain-mlm.js eval --json` run
 * on the written folder), never an input's: without --eval the card says it is
 * not evaluated. Its lineage is that of the input that had seen the most tokens,
 * so a run continued from the mean (--init) still gives the whole recipe.
 *
 *   node dist/scripts/pretrain/average.js --out DIR --models A,B[,C...] [--weights 0.5,0.5] [--eval FILE]
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, serializeSafetensors, type TensorToWrite } from '../../src/models/safetensors.js';
import { lineageOf, need, parseFlags, reproduceStages, UsageError, type FlagSpec, type Stage } from './run.js';

export function averageModels(dirs: string[], weights: number[], out: string, o: { evalFile?: string } = {}): { tensors: number; parameters: number } {
  if (dirs.length < 2) throw new UsageError(`--models: expected two or more model folders, got ${dirs.length}`);
  if (weights.length !== dirs.length) throw new UsageError(`--weights: expected ${dirs.length} numbers (one per model), got ${weights.length}`);
  if (weights.some((w) => !Number.isFinite(w) || w < 0)) throw new UsageError(`--weights: expected non-negative numbers, got ${weights.join(',')}`);
  const sum = weights.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new UsageError('--weights: they sum to 0');
  const configs = dirs.map((d) => {
    const f = join(d, 'config.json');
    if (!existsSync(f)) throw new UsageError(`${f}: no such file (a model folder has config.json and model.safetensors)`);
    return JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;
  });
  // the same architecture, or the mean means nothing; name the first field that differs
  for (let i = 1; i < dirs.length; i++) {
    for (const k of new Set([...Object.keys(configs[0]!), ...Object.keys(configs[i]!)])) {
      if (JSON.stringify(configs[0]![k]) !== JSON.stringify(configs[i]![k])) throw new UsageError(`${join(dirs[i]!, 'config.json')}: field "${k}" is ${JSON.stringify(configs[i]![k])}, but ${join(dirs[0]!, 'config.json')} has ${JSON.stringify(configs[0]![k])}`);
    }
  }
  const files = dirs.map((d) => readSafetensors(join(d, 'model.safetensors')));
  files.forEach((f, i) => {
    if (f.tensors.size !== files[0]!.tensors.size) throw new UsageError(`${join(dirs[i]!, 'model.safetensors')}: ${f.tensors.size} tensors, but ${join(dirs[0]!, 'model.safetensors')} has ${files[0]!.tensors.size}`);
  });
  const acc = new Map<string, TensorToWrite>();
  let parameters = 0;
  for (const [name, t] of files[0]!.tensors) {
    if (t.dtype !== 'F16' && t.dtype !== 'F32') throw new UsageError(`${join(dirs[0]!, 'model.safetensors')}: tensor "${name}" is ${t.dtype}; only float tensors can be averaged`);
    const mean = new Float32Array(t.data.length);
    files.forEach((f, i) => {
      const u = f.tensors.get(name);
      const file = join(dirs[i]!, 'model.safetensors');
      if (!u) throw new UsageError(`${file}: no tensor "${name}" (it is in ${join(dirs[0]!, 'model.safetensors')})`);
      if (JSON.stringify(u.shape) !== JSON.stringify(t.shape)) throw new UsageError(`${file}: tensor "${name}" has shape [${u.shape}], expected [${t.shape}]`);
      const w = weights[i]! / sum;
      for (let j = 0; j < mean.length; j++) mean[j] += w * u.data[j]!;
    });
    acc.set(name, { dtype: t.dtype as 'F16' | 'F32', shape: t.shape, data: mean });
    parameters += mean.length;
  }
  const evaluation = o.evalFile ? readEval(o.evalFile) : undefined;
  const metrics = evaluation?.metrics;
  mkdirSync(out, { recursive: true });
  for (const f of readdirSync(dirs[0]!)) if (!['model.safetensors', 'training_stats.json', 'README.md'].includes(f)) copyFileSync(join(dirs[0]!, f), join(out, f));
  writeFileSync(join(out, 'model.safetensors'), serializeSafetensors(acc));
  const inputs = dirs.map((d, i) => ({ dir: d, weight: weights[i]! / sum, stats: statsOf(d) }));
  const command = `node dist/scripts/pretrain/average.js --out ${out} --models ${dirs.join(',')}${weights.every((w) => w === weights[0]) ? '' : ` --weights ${weights.join(',')}`}`;
  // the input that had seen the most tokens carries the recipe (a later cycle continues the earlier one)
  const latest = inputs.reduce((x, y) => (seen(y.stats) > seen(x.stats) ? y : x));
  const lineage: Stage[] | undefined = latest.stats.steps !== undefined ? lineageOf(latest.stats as unknown as Parameters<typeof lineageOf>[0]) : undefined;
  const first = inputs[0]!.stats;
  // its command: the data preparation (the first line of a training run's multi-line command), then the averaging
  const firstLines = String(first.command ?? '').split('\n');
  const stats = {
    ...(first.kind !== undefined ? { kind: first.kind, preset: first.preset } : {}), parameters,
    // a continuation from this folder (--init) reads these: the mean itself trained no step
    steps: 0, tokensSeen: 0, trainSeconds: 0, tokensInAll: seen(latest.stats),
    ...(first.data !== undefined ? { data: first.data } : {}),
    ...(metrics ? { metrics, metricsFrom: o.evalFile } : {}),
    command: [...(firstLines.length > 1 ? [firstLines[0]] : []), command].join('\n'),
    averagedFrom: inputs.map((x) => ({ dir: x.dir, weight: x.weight, ...(x.stats.metrics ? { metrics: numbers(x.stats.metrics) } : {}), tokensInAll: seen(x.stats) })),
    ...(lineage ? { lineage } : {}),
  };
  writeFileSync(join(out, 'training_stats.json'), JSON.stringify(stats, null, 1) + '\n');
  writeFileSync(join(out, 'README.md'), card({ out, inputs, latest, tokensInAll: stats.tokensInAll, lineage, command, evaluation }));
  return { tensors: acc.size, parameters };
}

type Stats = Record<string, unknown> & { steps?: number; tokensSeen?: number; tokensInAll?: number; metrics?: Record<string, unknown>; command?: string };

function statsOf(dir: string): Stats {
  const f = join(dir, 'training_stats.json');
  return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) as Stats : {};
}

const seen = (st: Stats) => st.tokensInAll ?? st.tokensSeen ?? 0;

function numbers(m: Record<string, unknown>): Record<string, number> {
  return Object.fromEntries(Object.entries(m).filter(([, v]) => typeof v === 'number')) as Record<string, number>;
}

interface Evaluation { file: string; metrics: Record<string, unknown>; command?: string }

/** the held-out metrics of an eval --json file (the averaged model's own), and the command that wrote it */
function readEval(file: string): Evaluation {
  if (!existsSync(file)) throw new UsageError(`--eval ${file}: no such file (the JSON of pretrain-causal.js eval --json on the averaged folder)`);
  const e = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const keep = Object.fromEntries(Object.entries(e).filter(([k]) => !['model', 'backend', 'parameters', 'seconds', 'command'].includes(k)));
  if (!Object.values(keep).some((v) => typeof v === 'number')) throw new UsageError(`--eval ${file}: no numeric metric in it (expected e.g. "heldOutBitsPerByte")`);
  return { file, metrics: keep, ...(typeof e.command === 'string' ? { command: e.command } : {}) };
}

const SCORE = /BitsPerByte$|maskedAccuracy$/;

type Input = { dir: string; weight: number; stats: Stats };

function card({ out, inputs, latest, tokensInAll, lineage, command, evaluation }: {
  out: string; inputs: Input[]; latest: Input; tokensInAll: number; lineage: Stage[] | undefined; command: string; evaluation: Evaluation | undefined;
}): string {
  const name = out.split('/').filter(Boolean).at(-1)!;
  const fmt = (v: number) => (Number.isInteger(v) ? v.toLocaleString('en') : v.toPrecision(5));
  const score = (m: Record<string, unknown> | undefined) => Object.entries(m ?? {}).filter(([k, v]) => SCORE.test(k) && !k.startsWith('unigram') && typeof v === 'number').map(([k, v]) => `${k} ${(v as number).toFixed(4)}`).join(', ') || 'not recorded';
  const rows = inputs.map((x) => `| \`${x.dir}\` | ${x.weight.toFixed(3)} | ${seen(x.stats).toLocaleString('en')} | ${score(x.stats.metrics)} |`).join('\n');
  const evalLine = evaluation
    ? `Held out (the mean's own evaluation, \`${evaluation.file}\`): ${Object.entries(evaluation.metrics).filter(([, v]) => typeof v === 'number').map(([k, v]) => `${k} ${fmt(v as number)}`).join(', ')}.`
    : 'Not evaluated: the held-out scores of the inputs below are theirs, not this model\'s (`--eval FILE` writes its own).';
  return `# ${name}

The element-wise weighted mean of ${inputs.length} model folders of one architecture (\`scripts/pretrain/average.ts\`: weight
averaging of cycle ends, the simplest form of stochastic weight averaging), float16 like its inputs. ${evalLine}

| input | weight | tokens in all | its held-out score |
|---|---|---|---|
${rows}

Tokens in all: ${tokensInAll.toLocaleString('en')} (the input that had seen the most; the others are earlier stages of it or
runs beside it, so no token is counted twice). \`training_stats.json\` holds these numbers and the recipe.

Reproduce${lineage ? ' (each stage continues the model the stage before it saved, at the path its --init names)' : ''}:

\`\`\`
npm run build
${lineage && lineage.length > 1 ? reproduceStages(lineage.slice(0, -1), String(latest.stats.command ?? '')).replace('(this model)', `(\`${latest.dir}\`)`) : String(latest.stats.command ?? `# (${latest.dir}: its command not recorded)`)}
${command}${evaluation?.command ? `\n# the evaluation that gave the held-out numbers above (${evaluation.file})\n${evaluation.command}` : ''}
\`\`\`
`;
}

const FLAGS: FlagSpec = {
  out: { kind: 'string', help: 'the model folder to write' },
  models: { kind: 'list', help: 'comma-separated model folders of one architecture' },
  weights: { kind: 'list', help: 'comma-separated weights, one per model (default: equal)' },
  eval: { kind: 'string', help: 'the eval --json file of the written folder: its metrics become the mean\'s own (else: not evaluated)' },
};

function main(argv: string[]): number {
  const f = parseFlags(argv, FLAGS, 'average');
  const out = need<string>(f, 'out', 'average');
  const dirs = (f.models as string[] | undefined) ?? [];
  const weights = f.weights ? (f.weights as string[]).map(Number) : dirs.map(() => 1);
  const r = averageModels(dirs, weights, out, { evalFile: f.eval as string | undefined });
  console.log(`${out}: ${r.tensors} tensors, ${r.parameters.toLocaleString('en')} values, the mean of ${dirs.join(', ')} with weights ${weights.join(', ')}`);
  return 0;
}

if (process.argv[1]?.endsWith('average.js')) {
  try { process.exitCode = main(process.argv.slice(2)); } catch (e) { console.error(e instanceof Error ? e.message : e); process.exitCode = 2; }
}
