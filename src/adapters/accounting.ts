/**
 * Trainable parameters and optimizer-state bytes per variant, from the
 * paper's formulas (analytic shapes) or from a live model (exact, a tied
 * tensor counted once). A removed fp32 parameter saves its weight, its
 * gradient and AdamW's two moments.
 */
import * as aq from 'arquero';
import type { Model } from '../models/types.js';
import { SHARES, type Share } from './config.js';
import { findTargets } from './targets.js';

/** One adapted module type: its input and output widths. */
export interface ModuleShape { name: string; dIn: number; dOut: number }
export interface ArchShape { name: string; layers: number; modules: Record<string, { dIn: number; dOut: number }> }

const h = (d: number) => ({ dIn: d, dOut: d });
/** Paper-scale shapes (no weights needed). */
export const PAPER_SHAPES: Record<string, ArchShape> = {
  'roberta-base': { name: 'RoBERTa-base', layers: 12, modules: { q: h(768), k: h(768), v: h(768), o: h(768), up: { dIn: 768, dOut: 3072 }, down: { dIn: 3072, dOut: 768 } } },
  'roberta-large': { name: 'RoBERTa-large', layers: 24, modules: { q: h(1024), k: h(1024), v: h(1024), o: h(1024), up: { dIn: 1024, dOut: 4096 }, down: { dIn: 4096, dOut: 1024 } } },
  'gpt2-medium': { name: 'GPT-2 M', layers: 24, modules: { q: h(1024), k: h(1024), v: h(1024), o: h(1024), up: { dIn: 1024, dOut: 4096 }, down: { dIn: 4096, dOut: 1024 } } },
  'gpt2-large': { name: 'GPT-2 L', layers: 36, modules: { q: h(1280), k: h(1280), v: h(1280), o: h(1280), up: { dIn: 1280, dOut: 5120 }, down: { dIn: 5120, dOut: 1280 } } },
  'llama-7b': { name: 'LLaMA-7B', layers: 32, modules: { q: h(4096), k: h(4096), v: h(4096), o: h(4096), gate: { dIn: 4096, dOut: 11008 }, up: { dIn: 4096, dOut: 11008 }, down: { dIn: 11008, dOut: 4096 } } },
  'llama-13b': { name: 'LLaMA-13B', layers: 40, modules: { q: h(5120), k: h(5120), v: h(5120), o: h(5120), gate: { dIn: 5120, dOut: 13824 }, up: { dIn: 5120, dOut: 13824 }, down: { dIn: 13824, dOut: 5120 } } },
  'llama-3-8b': { name: 'LLaMA-3-8B', layers: 32, modules: { q: h(4096), k: { dIn: 4096, dOut: 1024 }, v: { dIn: 4096, dOut: 1024 }, o: h(4096), gate: { dIn: 4096, dOut: 14336 }, up: { dIn: 4096, dOut: 14336 }, down: { dIn: 14336, dOut: 4096 } } },
};

/** Trainable adapter parameters for L layers of each module type (the brief's table). */
export function countParameters(layers: number, modules: ModuleShape[], r: number, share: Share): number {
  let n = 0;
  for (const { dIn, dOut } of modules) {
    const a = r * dIn, b = r * dOut;
    n += (share === 'A' || share === 'AB' ? a : layers * a) + (share === 'B' || share === 'AB' ? b : layers * b);
  }
  return n;
}

export interface AccountingRow {
  model: string; variant: string; share: Share; r: number; targets: string;
  trainable: number; vsLoRA: number; weightBytes: number; gradBytes: number; optimizerBytes: number; savedBytes: number;
}

function rows(model: string, layers: number, modules: ModuleShape[], r: number, extra = 0): AccountingRow[] {
  const lora = countParameters(layers, modules, r, 'none') + extra;
  return SHARES.map((share) => {
    const trainable = countParameters(layers, modules, r, share) + extra;
    return {
      model, variant: share === 'none' ? 'LoRA' : `Share${share}`, share, r, targets: modules.map((m) => m.name).join(','),
      trainable, vsLoRA: trainable / lora - 1, weightBytes: 4 * trainable, gradBytes: 4 * trainable,
      optimizerBytes: 8 * trainable, savedBytes: 16 * (lora - trainable),
    };
  });
}

/**
 * Accounting table for a paper shape (`'roberta-base'`, `'llama-7b'`, ...) or a loaded model.
 * @example parameterTable('roberta-base', { r: 8, targets: ['q', 'v'] })
 */
export function parameterTable(arch: string | ArchShape | Model, o: { r: number; targets: string[] }): aq.ColumnTable {
  if (typeof arch === 'object' && 'forward' in arch) {
    const targets = findTargets(arch, o.targets);
    const roles = new Map<string, ModuleShape>();
    for (const t of targets) roles.set(t.role, { name: t.role, dIn: t.linear.inFeatures, dOut: t.linear.outFeatures });
    return aq.from(rows(`${arch.family} (${arch.numLayers} layers)`, arch.numLayers, [...roles.values()], o.r));
  }
  const shape = typeof arch === 'string' ? PAPER_SHAPES[arch] : arch;
  if (!shape) throw new Error(`unknown architecture "${arch}"; known: ${Object.keys(PAPER_SHAPES).join(', ')}`);
  const mods = o.targets.map((t) => {
    const m = shape.modules[t];
    if (!m) throw new Error(`${shape.name} has no module "${t}"; known: ${Object.keys(shape.modules).join(', ')}`);
    return { name: t, ...m };
  });
  return aq.from(rows(shape.name, shape.layers, mods, o.r));
}

/** The paper-scale table the quickstart shows: each shape with the paper's recipe. */
export function paperTable(): aq.ColumnTable {
  const recipes: Array<[string, number, string[]]> = [
    ['roberta-base', 8, ['q', 'v']], ['roberta-large', 8, ['q', 'v']], ['gpt2-medium', 4, ['q', 'v']], ['gpt2-large', 4, ['q', 'v']],
    ['llama-7b', 64, ['q', 'k', 'v', 'o', 'gate', 'up', 'down']], ['llama-13b', 64, ['q', 'k', 'v', 'o', 'gate', 'up', 'down']], ['llama-3-8b', 64, ['q', 'v']],
  ];
  let t: aq.ColumnTable | undefined;
  for (const [a, r, targets] of recipes) {
    const x = parameterTable(a, { r, targets });
    t = t ? t.concat(x) : x;
  }
  return t!;
}
