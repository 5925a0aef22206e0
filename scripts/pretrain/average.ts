/**
 * Weight averaging of saved models of one architecture (issue 20): the
 * element-wise weighted mean of their `model.safetensors`, written as a new
 * model folder (float16 like the inputs; every other file copied from the
 * first folder, training_stats.json given an `averagedFrom` field naming the
 * inputs and weights). Averaging the ends of two cosine cycles of one run is
 * stochastic weight averaging (Izmailov et al. 2018) in its simplest form.
 *
 *   node dist/scripts/pretrain/average.js --out DIR --models A,B[,C...] [--weights 0.5,0.5]
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, serializeSafetensors, type TensorToWrite } from '../../src/models/safetensors.js';
import { need, parseFlags, UsageError, type FlagSpec } from './run.js';

export function averageModels(dirs: string[], weights: number[], out: string): { tensors: number; parameters: number } {
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
  mkdirSync(out, { recursive: true });
  for (const f of readdirSync(dirs[0]!)) if (f !== 'model.safetensors' && f !== 'training_stats.json') copyFileSync(join(dirs[0]!, f), join(out, f));
  writeFileSync(join(out, 'model.safetensors'), serializeSafetensors(acc));
  const statsFile = join(dirs[0]!, 'training_stats.json');
  const stats = existsSync(statsFile) ? (JSON.parse(readFileSync(statsFile, 'utf8')) as Record<string, unknown>) : {};
  writeFileSync(join(out, 'training_stats.json'), JSON.stringify({ ...stats, averagedFrom: dirs.map((d, i) => ({ dir: d, weight: weights[i]! / sum })) }, null, 1) + '\n');
  return { tensors: acc.size, parameters };
}

const FLAGS: FlagSpec = {
  out: { kind: 'string', help: 'the model folder to write' },
  models: { kind: 'list', help: 'comma-separated model folders of one architecture' },
  weights: { kind: 'list', help: 'comma-separated weights, one per model (default: equal)' },
};

function main(argv: string[]): number {
  const f = parseFlags(argv, FLAGS, 'average');
  const out = need<string>(f, 'out', 'average');
  const dirs = (f.models as string[] | undefined) ?? [];
  const weights = f.weights ? (f.weights as string[]).map(Number) : dirs.map(() => 1);
  const r = averageModels(dirs, weights, out);
  console.log(`${out}: ${r.tensors} tensors, ${r.parameters.toLocaleString('en')} values, the mean of ${dirs.join(', ')} with weights ${weights.join(', ')}`);
  return 0;
}

if (process.argv[1]?.endsWith('average.js')) {
  try { process.exitCode = main(process.argv.slice(2)); } catch (e) { console.error(e instanceof Error ? e.message : e); process.exitCode = 2; }
}
