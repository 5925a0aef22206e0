/**
 * The short ratio table bench/gpu-all.sh prints last: every ours-vs-PyTorch
 * pair in the JSON files bench/run.ts wrote into one folder.
 *   node dist/bench/summary.js <folder>
 * Speed ratio = PyTorch ms per step / ours (above 1: we are faster).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

type R = { readRoundTripMs?: number; medianMs?: number; runs?: unknown[]; error?: string; poolBytes?: number; peakAllocatedBytes?: number; profileGpuMs?: number; kernelsPerStep?: number; cpuMs?: number; gpuDispatchesPerStep?: number; engineOpsPerStep?: number };
/** dispatches and engine ops a step (bench/NOTES.md entry 12: what a fusion removes) */
const ops = (o?: R) => `${o?.gpuDispatchesPerStep} dispatches, ${o?.engineOpsPerStep} engine ops a step`;
const dir = process.argv[2];
if (!dir) throw new Error('usage: node dist/bench/summary.js <folder with gpt2-small.json, gpt2-host.json, gpt2-pipeline.json, notebook.json, scaling.json>');
const read = (f: string) => existsSync(join(dir, f)) ? JSON.parse(readFileSync(join(dir, f), 'utf8')) : undefined;
const ms = (r?: R) => typeof r?.medianMs === 'number' ? r.medianMs.toFixed(1) : `- (${r?.error ?? 'missing'})`.slice(0, 60);
const ratio = (ours?: R, torch?: R) => ours?.medianMs && torch?.medianMs ? `${(torch.medianMs / ours.medianMs).toFixed(3)}x` : '-';
const gib = (b?: number) => typeof b === 'number' ? `${(b / 2 ** 30).toFixed(2)} GiB` : '-';
const lines = ['', 'what | ours ms | PyTorch ms | speed ours/PyTorch | runs ours ; torch'];

// a part cut short by its time limit leaves only its finished runs ({ partial }): list their medians
for (const [f, suite] of [['gpt2-small.json', 'gpu'], ['gpt2-host.json', 'gpu'], ['gpt2-pipeline.json', 'gpu'], ['notebook.json', 'notebook'], ['scaling.json', 'scaling']]) {
  const partial = read(f)?.[suite]?.partial as Record<string, R[]> | undefined;
  for (const [k, rs] of Object.entries(partial ?? {})) lines.push(`${suite} (cut short) ${k} | ${rs.map((r) => ms(r)).join(', ')} | | |`);
}
// the headline (gpt2-small.json), since session 22 the host part's A/Bs (gpt2-host.json) and, since session 21, both sides clipping with fit()'s pipelined step (gpt2-pipeline.json)
for (const [file, tag] of [['gpt2-small.json', ''], ['gpt2-host.json', ' (host part)'], ['gpt2-pipeline.json', ', clip 1 both sides']]) {
  const small = read(file)?.gpu as { ours: Record<string, R>; torch: Record<string, R>; extraRuns?: Record<string, R> } | undefined;
  if (small?.ours) {
    for (const v of ['lora', 'sharea']) {
      lines.push(`GPT-2 small 8x256${tag} ${v} vs eager | ${ms(small.ours[v])} | ${ms(small.torch[v])} | ${ratio(small.ours[v], small.torch[v])} | ${JSON.stringify(small.ours[v]?.runs)} ; ${JSON.stringify(small.torch[v]?.runs)}`);
      const c = small.torch[`${v}_compile`];
      if (c) lines.push(`GPT-2 small 8x256 ${v} vs torch.compile | ${ms(small.ours[v])} | ${ms(c)} | ${ratio(small.ours[v], c)} |`);
    }
    // same-run A/Bs: ours under other switches (one run each, or `repeats` with --interleave-variants), against the same PyTorch median
    for (const [k, o] of Object.entries(small.extraRuns ?? {})) {
      lines.push(`GPT-2 small${tag} ${k} | ${ms(o)} | ${ms(small.torch[k.split(':')[0]])} | ${ratio(o, small.torch[k.split(':')[0]])} | ${o?.runs ? JSON.stringify(o.runs) : '(1 run)'}`);
    }
    const l = small.ours.lora;
    lines.push(`GPT-2 small${tag} memory: ours pool ${gib(l?.poolBytes)}, PyTorch peak ${gib(small.torch.lora?.peakAllocatedBytes)}; profile ${l?.profileGpuMs?.toFixed(1)} ms GPU over ${l?.kernelsPerStep} kernels; host CPU ${l?.cpuMs?.toFixed(1)} ms/step`);
  }
}
// the kernel variants (bench/gpu-all.sh gpt2-kernels): one run each, profiled; their GPU time against ShareA's own
const kern = read('gpt2-kernels.json')?.gpu as { ours: Record<string, R>; torch: Record<string, R>; extraRuns?: Record<string, R> } | undefined;
if (kern?.ours) {
  const a = kern.ours.sharea;
  lines.push(`GPT-2 small sharea (kernel part, 1 run) | ${ms(a)} | ${ms(kern.torch?.sharea)} | ${ratio(a, kern.torch?.sharea)} | GPU ${a?.profileGpuMs?.toFixed(2) ?? '-'} ms`);
  for (const [k, o] of Object.entries(kern.extraRuns ?? {})) {
    lines.push(`GPT-2 small ${k} (kernel part, 1 run) | ${ms(o)} | ${ms(kern.torch?.[k.split(':')[0]])} | ${ratio(o, kern.torch?.[k.split(':')[0]])} | GPU ${o?.profileGpuMs?.toFixed(2) ?? '-'} ms`);
  }
}
const nb = read('notebook.json')?.notebook as { results: Record<string, R>; rows: Array<{ layers: number; variant: string }> } | undefined;
if (nb?.rows) {
  for (const r of nb.rows) {
    const o = nb.results[`ours ${r.layers} ${r.variant}`], t = nb.results[`torch ${r.layers} ${r.variant}`];
    lines.push(`notebook ${r.layers} layers ${r.variant} | ${ms(o)} | ${ms(t)} | ${ratio(o, t)} | ${JSON.stringify(o?.runs)} ; ${JSON.stringify(t?.runs)}; host CPU ${o?.cpuMs?.toFixed(1)} ms, GPU ${o?.profileGpuMs?.toFixed(1)} ms over ${o?.kernelsPerStep} kernels, read round trip ${o?.readRoundTripMs} ms; ${ops(o)}`);
  }
}
const nbv = (read('notebook.json')?.notebook as { variantResults?: Record<string, R>; results: Record<string, R> } | undefined);
for (const [k, o] of Object.entries(nbv?.variantResults ?? {})) {
  const [, layers, rest] = k.split(' ');
  const t = nbv!.results[`torch ${layers} ${rest.split(':')[0]}`];
  lines.push(`notebook ${k.slice(5)} | ${ms(o)} | ${ms(t)} | ${ratio(o, t)} | (1 run); host CPU ${o?.cpuMs?.toFixed(1)} ms; ${ops(o)}`);
}
const sc = read('scaling.json')?.scaling as { results: Record<string, R>; rows: Array<{ shape: string }> } | undefined;
if (sc?.rows) {
  for (const r of sc.rows) {
    const o = sc.results[`ours ${r.shape}`], t = sc.results[`torch ${r.shape}`];
    lines.push(`${r.shape} sharea | ${ms(o)} | ${ms(t)} | ${ratio(o, t)} | pool ${gib(o?.poolBytes)} ; peak ${gib(t?.peakAllocatedBytes)}`);
  }
}
console.log(lines.join('\n'));
