/**
 * Which projections a target list names. Sharing groups projections by
 * "role": the module path with its layer index removed, so that
 * `model.layers.3.self_attn.q_proj` has role `self_attn.q_proj`.
 */
import type { Model } from '../models/types.js';
import type { Linear } from '../models/linear.js';
import { AdapterConfigError } from './config.js';

/** Short names -> the role each family gives them. GPT-2 fuses q, k and v into c_attn. */
const SHORT: Record<Model['family'], Record<string, string>> = {
  gpt2: { q: 'attn.c_attn', k: 'attn.c_attn', v: 'attn.c_attn', o: 'attn.c_proj', up: 'mlp.c_fc', down: 'mlp.c_proj' },
  roberta: { q: 'attention.self.query', k: 'attention.self.key', v: 'attention.self.value', o: 'attention.output.dense', up: 'intermediate.dense', down: 'output.dense' },
  llama: { q: 'self_attn.q_proj', k: 'self_attn.k_proj', v: 'self_attn.v_proj', o: 'self_attn.o_proj', gate: 'mlp.gate_proj', up: 'mlp.up_proj', down: 'mlp.down_proj' },
};

export interface Target { path: string; role: string; layer: number; linear: Linear }

const LAYER = /^(.*?)\.(\d+)\.(.+)$/;

export function splitPath(path: string): { prefix: string; layer: number; role: string } | undefined {
  const m = LAYER.exec(path);
  return m ? { prefix: m[1], layer: Number(m[2]), role: m[3] } : undefined;
}

export function findTargets(model: Model, targets: string[] | RegExp): Target[] {
  const all: Target[] = [];
  for (const [path, linear] of model.linears) {
    const s = splitPath(path);
    if (s) all.push({ path, role: s.role, layer: s.layer, linear });
  }
  let chosen: Target[];
  if (targets instanceof RegExp) {
    chosen = all.filter((t) => targets.test(t.path));
  } else {
    const roles = new Set<string>();
    const unknown: string[] = [];
    for (const name of targets) {
      const short = SHORT[model.family][name];
      if (short) { roles.add(short); continue; }
      const matched = all.filter((t) => t.role === name || t.role.endsWith('.' + name));
      if (!matched.length) unknown.push(name);
      for (const t of matched) roles.add(t.role);
    }
    if (unknown.length) {
      const examples = [...new Set(all.map((t) => t.role))].join(', ');
      throw new AdapterConfigError('targets', `${unknown.map((u) => `"${u}"`).join(', ')} matched no projection of this ${model.family} model. Use short names (${Object.keys(SHORT[model.family]).join(', ')}) or module names such as ${examples}`);
    }
    chosen = all.filter((t) => roles.has(t.role));
  }
  if (!chosen.length) throw new AdapterConfigError('targets', `matched no projection of this ${model.family} model`);
  return chosen.sort((a, b) => a.role.localeCompare(b.role) || a.layer - b.layer);
}
