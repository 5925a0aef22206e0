/**
 * What Dawn's shader compiler (Tint) adds to our kernels: one training step of a bench worker spec runs in a
 * child process with Dawn's `dump_shaders` toggle, and each of our kernels' SPIR-V is read for the bounds
 * clamps (GLSL.std.450 UMin/UClamp that the WGSL did not ask for are Tint's robustness) and the loops they sit
 * in. A clamp in an inner loop costs an issue slot per load; one outside costs nothing measurable. Tint's range
 * analysis drops a clamp when it can prove the index in range (a constant trip count, local_invocation_id
 * bounded by the workgroup size), so how a kernel writes its indices decides whether robustness costs it
 * anything (bench/NOTES.md entry 28). Runs anywhere webgpu does (lavapipe here).
 *
 *   node dist/bench/shader-audit.js [spec.json]   # default: GPT-2 width 768, 1 layer, vocabulary 8,257, 8 × 256, ShareA on c_attn
 *
 * Prints one row per kernel key: clamps in all, clamps inside loops (deepest nesting), loops, FMAs; and
 * `@@RESULT {json}`. Our WGSL's own `min(...)` calls (explicit clamps in epilogues and row gathers) are
 * counted too: the SPIR-V cannot tell them apart, so `wgslMin` gives how many the source wrote.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GPT2_SMALL } from './run.js';
import type { WorkerSpec } from './worker.js';

export interface ShaderAudit { key: string; clamps: number; clampsInLoops: number; maxDepth: number; loops: number; fmas: number; wgslMin: number }

const DEFAULT_SPEC: WorkerSpec = {
  backend: 'webgpu',
  // (lavapipe binds at most 128 MiB: a 50,257-word vocabulary's logits at 8 × 256 do not fit)
  config: { ...GPT2_SMALL, n_layer: 1, vocab_size: 8257, n_positions: 256 },
  batch: 8, seq: 256, variant: 'sharea', r: 8, alpha: 16, targets: ['c_attn'], steps: 2, warmup: 1,
};

/** Each of our kernels' SPIR-V from a Dawn shader dump (`// Dumped WGSL:` then `Dumped SPIRV disassembly`). */
export function auditDump(text: string): ShaderAudit[] {
  const out = new Map<string, ShaderAudit>();
  for (const part of text.split('// Dumped WGSL:').slice(1)) {
    const [wgsl, rest = ''] = part.split('Dumped SPIRV disassembly');
    const key = /\/\/ kernel: (\S+)/.exec(wgsl)?.[1];
    if (!key || out.has(key)) continue; // tfjs's own kernels carry no key
    const spirv = rest.split('// Dumped WGSL')[0];
    let clamps = 0, clampsInLoops = 0, maxDepth = 0, loops = 0, fmas = 0;
    const open: string[] = []; // merge labels of the loops the current block is inside (structured order)
    for (const line of spirv.split('\n')) {
      const label = /^\s*(%\S+) = OpLabel/.exec(line)?.[1];
      if (label) while (open.length && open[open.length - 1] === label) open.pop();
      const merge = /OpLoopMerge (%\S+)/.exec(line)?.[1];
      if (merge) { loops++; open.push(merge); }
      if (/ (UMin|SMin|UClamp|SClamp) /.test(line)) {
        clamps++;
        if (open.length) { clampsInLoops++; maxDepth = Math.max(maxDepth, open.length); }
      }
      if (/ Fma /.test(line)) fmas++;
    }
    const wgslMin = (wgsl.match(/\bmin\(/g) ?? []).length + (wgsl.match(/\bclamp\(/g) ?? []).length;
    out.set(key, { key, clamps, clampsInLoops, maxDepth, loops, fmas, wgslMin });
  }
  return [...out.values()];
}

/** Runs `spec` (steps and warm-up at least 1) in a child bench worker with shader dumps on, and audits them. */
export function auditSpec(spec: WorkerSpec = DEFAULT_SPEC, env: Record<string, string> = {}): ShaderAudit[] {
  if (spec.backend !== 'webgpu') throw new Error(`shader audit: spec.backend must be "webgpu", got ${JSON.stringify(spec.backend)}`);
  // dump_shaders joins the spec's own enabled features (Dawn reads one enable-dawn-features flag)
  const ENABLE = 'enable-dawn-features=';
  const given = spec.dawnFlags ?? [];
  const enabled = given.find((f) => f.startsWith(ENABLE));
  const flags = [...given.filter((f) => f !== enabled), `${enabled ? `${enabled},` : ENABLE}dump_shaders`];
  const worker = fileURLToPath(new URL('./worker.js', import.meta.url));
  const r = spawnSync(process.execPath, [worker, JSON.stringify({ ...spec, dawnFlags: flags })], { encoding: 'utf8', maxBuffer: 1 << 30, env: { ...process.env, ...env } });
  const text = `${r.stdout}\n${r.stderr}`;
  const result = /@@RESULT (.*)/.exec(text)?.[1];
  if (r.status !== 0) throw new Error(`shader audit: the worker exited with ${r.status}: ${text.slice(-2000)}`);
  if (result && /"error"/.test(result)) throw new Error(`shader audit: the worker's step failed: ${result.slice(-1000)}`);
  const rows = auditDump(text);
  if (!rows.length) throw new Error('shader audit: no kernel of ours in the dump (does this Dawn honour dump_shaders?)');
  return rows;
}

if (process.argv[1] && /shader-audit\.js$/.test(process.argv[1])) {
  const spec = process.argv[2] ? JSON.parse(readFileSync(process.argv[2], 'utf8')) as WorkerSpec : DEFAULT_SPEC;
  const rows = auditSpec(spec).sort((a, b) => b.clampsInLoops - a.clampsInLoops || b.clamps - a.clamps);
  console.log('clamps  in loops (depth)  loops  FMAs  min() in WGSL  kernel');
  for (const r of rows) {
    console.log(`${String(r.clamps).padStart(6)}  ${String(r.clampsInLoops).padStart(8)} (${r.maxDepth})  ${String(r.loops).padStart(9)}  ${String(r.fmas).padStart(4)}  ${String(r.wgslMin).padStart(13)}  ${r.key}`);
  }
  process.stdout.write(`@@RESULT ${JSON.stringify({ rows })}\n`);
}
