/**
 * Trainable parameters and optimizer-state bytes per variant, from the
 * paper's formulas (analytic shapes) or from a live model (exact, a tied
 * tensor counted once). A removed fp32 parameter saves its weight, its
 * gradient and AdamW's two moments.
 */
import * as aq from 'arquero';
import type { Model } from '../models/types.js';
import { AdapterConfig, AdapterConfigError, resolveGroups, sharesA, sharesB, type Method, type Share, type ShareLoraOptions } from './config.js';
import { findTargets } from './targets.js';
import { checkOptions, optionKeys } from '../util/options.js';

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

/**
 * Trainable adapter parameters for L layers of each module type (the
 * README's table), with the shared matrix tied within G groups of layers:
 * ShareA = G·r·d_in + L·r·d_out, ShareB = L·r·d_in + G·r·d_out,
 * ShareAB = G·r·(d_in + d_out). G = 1 is the paper's ShareLoRA, G = L is LoRA.
 */
export function countParameters(layers: number, modules: ModuleShape[], r: number, share: Share, groups = 1): number {
  if (!Number.isSafeInteger(groups) || groups < 1 || groups > layers) throw new AdapterConfigError('groups', `must be an integer from 1 to the ${layers} layers, got ${groups}`);
  let n = 0;
  for (const { dIn, dOut } of modules) {
    const a = r * dIn, b = r * dOut;
    n += (sharesA(share) ? groups * a : layers * a) + (sharesB(share) ? groups * b : layers * b);
  }
  return n;
}

export interface AccountingRow {
  /** groups: distinct copies of the shared matrix per module type (L for LoRA, where nothing is shared) */
  model: string; variant: string; method: Method; share: Share; r: number; targets: string; groups: number;
  /** trainable elements (a tied tensor once) and the adapter's frozen ones (LoRA-FA's A, VeRA's projections, Tied-LoRA's frozen factors) */
  trainable: number; frozen: number; vsLoRA: number;
  /** bytes of fp32: trainable weights, their gradients, AdamW's two moments, the frozen adapter tensors, and what is saved against LoRA (16 per parameter no longer trained, less the frozen tensors' 4) */
  weightBytes: number; gradBytes: number; optimizerBytes: number; frozenBytes: number; savedBytes: number;
}

/** a module type adapted in `layers` layers whose tie spans `groups` groups (a live model's targets may skip layers) */
interface Counted extends ModuleShape { layers: number; groups: number }

/** The variants a table can list: the four ShareLoRA ones, their LoRA-FA twins, VeRA, and Tied-LoRA in the paper's notation. */
export const DEFAULT_VARIANTS = ['LoRA', 'ShareA', 'ShareB', 'ShareAB'] as const;
const VARIANT = /^(?:(LoRA|ShareA|ShareB|ShareAB)(-FA)?|LoRA-FA|VeRA|Tied-LoRA(?::([vV][bB][uU][aA]))?)$/;

interface Spec { method: Method; share: Share; train: ReadonlySet<string> }
/** a variant's name as the options it stands for, resolved by AdapterConfig (which says what each method trains) */
function parseVariant(v: string): Spec {
  const m = typeof v === 'string' ? VARIANT.exec(v) : null;
  if (!m || v === 'Tied-LoRA:vbua') throw new AdapterConfigError('variants', `${JSON.stringify(v)} is not a variant; known: LoRA, ShareA, ShareB, ShareAB, each with -FA (A frozen: LoRA-FA, ShareA-FA, ...), VeRA, Tied-LoRA (all of v B u A trained) or Tied-LoRA:<v B u A, a capital for each trained factor> such as Tied-LoRA:vBuA`);
  let options: ShareLoraOptions;
  if (v === 'VeRA') options = { method: 'vera' };
  else if (v.startsWith('Tied-LoRA')) options = { method: 'tied-lora', tiedTrain: m[3] ?? 'VBUA' };
  else {
    const name = v === 'LoRA-FA' ? 'LoRA' : m[1];
    options = { method: v === 'LoRA-FA' || m[2] !== undefined ? 'lora-fa' : 'lora', share: name === 'LoRA' ? 'none' : name.slice(5) as Share };
  }
  const c = AdapterConfig.resolve(options, { where: 'parameterTable' });
  return { method: c.method, share: c.share, train: c.train };
}

/**
 * Trainable and frozen elements of one variant, summed over module types.
 * LoRA family: A is G·r·d_in if tied else L·r·d_in (B likewise with d_out); LoRA-FA moves A to frozen.
 * Tied-LoRA: G·r·d_in (A) + G·r·d_out (B) + L·r (u) + L·d_out (v), each trainable or frozen as the pattern says (frozen u, v are ones and not stored).
 * VeRA: L·(r + d_out) trainable per module type; frozen r·(max d_in + max d_out), once for the model.
 */
export function countVariant(modules: Counted[], r: number, variant: string): { trainable: number; frozen: number } {
  const s = parseVariant(variant);
  let trainable = 0, frozen = 0;
  const add = (n: number, f: string) => { if (s.train.has(f)) trainable += n; else frozen += n; };
  if (s.method === 'vera') {
    for (const m of modules) trainable += m.layers * (r + m.dOut);
    frozen = r * (Math.max(...modules.map((m) => m.dIn)) + Math.max(...modules.map((m) => m.dOut)));
    return { trainable, frozen };
  }
  for (const m of modules) {
    add((sharesA(s.share) ? m.groups : m.layers) * r * m.dIn, 'A');
    add((sharesB(s.share) ? m.groups : m.layers) * r * m.dOut, 'B');
    if (s.method === 'tied-lora') {
      if (s.train.has('u')) trainable += m.layers * r;
      if (s.train.has('v')) trainable += m.layers * m.dOut;
    }
  }
  return { trainable, frozen };
}

function rows(model: string, modules: Counted[], r: number, variants: readonly string[]): AccountingRow[] {
  const lora = modules.reduce((n, m) => n + countParameters(m.layers, [m], r, 'none', m.groups), 0);
  const groups = Math.max(...modules.map((m) => m.groups)), layers = Math.max(...modules.map((m) => m.layers));
  return variants.map((variant) => {
    const { method, share } = parseVariant(variant);
    const { trainable, frozen } = countVariant(modules, r, variant);
    return {
      model, variant, method, share, r, targets: modules.map((m) => m.name).join(','),
      groups: share === 'none' ? layers : method === 'vera' ? 1 : groups, trainable, frozen, vsLoRA: trainable / lora - 1,
      weightBytes: 4 * trainable, gradBytes: 4 * trainable, optimizerBytes: 8 * trainable, frozenBytes: 4 * frozen,
      savedBytes: 16 * lora - (16 * trainable + 4 * frozen),
    };
  });
}

export interface TableOptions {
  r: number;
  targets: string[];
  /** as injectShareLoRA's: k (blocks of k layers) or a partition of the layers; default one group of all layers */
  shareGroups?: number | number[][];
  /** the rows: default LoRA, ShareA, ShareB, ShareAB; also LoRA-FA, ShareA-FA, ..., VeRA, Tied-LoRA, Tied-LoRA:vBuA, ... */
  variants?: string[];
}
const TABLE_OPTIONS = optionKeys<TableOptions>()(['r', 'targets', 'shareGroups', 'variants']);

/**
 * Accounting table for a paper shape (`'roberta-base'`, `'llama-7b'`, ...) or a loaded model.
 * @example parameterTable('roberta-base', { r: 8, targets: ['q', 'v'] })
 * @example parameterTable('llama-7b', { r: 64, targets: ['q', 'v'], shareGroups: 4 })   // 8 groups of 4 layers
 */
export function parameterTable(arch: string | ArchShape | Model, o: TableOptions): aq.ColumnTable {
  checkOptions('parameterTable', o, TABLE_OPTIONS);
  if (!Number.isSafeInteger(o.r) || o.r < 1) throw new AdapterConfigError('r', `must be a positive integer, got ${JSON.stringify(o.r)}`);
  const variants = o.variants ?? DEFAULT_VARIANTS;
  if (!Array.isArray(variants) || !variants.length) throw new AdapterConfigError('variants', `must be a non-empty list of variant names, got ${JSON.stringify(o.variants)}`);
  variants.forEach(parseVariant);
  if (typeof arch === 'object' && 'forward' in arch) {
    const groups = resolveGroups(o.shareGroups, arch.numLayers);
    const roles = new Map<string, Counted & { at: Set<number> }>();
    for (const t of findTargets(arch, o.targets)) {
      const m = roles.get(t.role) ?? { name: t.role, dIn: t.linear.inFeatures, dOut: t.linear.outFeatures, layers: 0, groups: 0, at: new Set<number>() };
      m.layers++;
      m.at.add(t.layer);
      roles.set(t.role, m);
    }
    // a role tied within a group that holds none of its layers has no copy there
    for (const m of roles.values()) m.groups = groups.filter((g) => g.some((l) => m.at.has(l))).length;
    return aq.from(rows(`${arch.family} (${arch.numLayers} layers)`, [...roles.values()].map(({ at: _, ...m }) => m), o.r, variants));
  }
  const shape = typeof arch === 'string' ? PAPER_SHAPES[arch] : arch;
  if (!shape) throw new Error(`unknown architecture "${arch}"; known: ${Object.keys(PAPER_SHAPES).join(', ')}`);
  const G = resolveGroups(o.shareGroups, shape.layers).length;
  const mods = o.targets.map((t) => {
    const m = shape.modules[t];
    if (!m) throw new Error(`${shape.name} has no module "${t}"; known: ${Object.keys(shape.modules).join(', ')}`);
    return { name: t, ...m, layers: shape.layers, groups: G };
  });
  return aq.from(rows(shape.name, mods, o.r, variants));
}

/**
 * The paper-scale table the quickstart shows: each shape with the paper's
 * recipe; shareGroups k ties within blocks of k layers (capped at each
 * model's depth, so one k spans models of different depths).
 */
export function paperTable(o: { shareGroups?: number; variants?: string[] } = {}): aq.ColumnTable {
  checkOptions('paperTable', o, ['shareGroups', 'variants']);
  if (o.shareGroups !== undefined && !(Number.isSafeInteger(o.shareGroups) && o.shareGroups >= 1)) throw new AdapterConfigError('shareGroups', `must be a positive integer k, got ${JSON.stringify(o.shareGroups)}`);
  const recipes: Array<[string, number, string[]]> = [
    ['roberta-base', 8, ['q', 'v']], ['roberta-large', 8, ['q', 'v']], ['gpt2-medium', 4, ['q', 'v']], ['gpt2-large', 4, ['q', 'v']],
    ['llama-7b', 64, ['q', 'k', 'v', 'o', 'gate', 'up', 'down']], ['llama-13b', 64, ['q', 'k', 'v', 'o', 'gate', 'up', 'down']], ['llama-3-8b', 64, ['q', 'v']],
  ];
  let t: aq.ColumnTable | undefined;
  for (const [a, r, targets] of recipes) {
    const k = o.shareGroups === undefined ? undefined : Math.min(o.shareGroups, PAPER_SHAPES[a].layers);
    const x = parameterTable(a, { r, targets, shareGroups: k, ...(o.variants && { variants: o.variants }) });
    t = t ? t.concat(x) : x;
  }
  return t!;
}
