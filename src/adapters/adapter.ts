/**
 * What the rest of the adapter code sees of an injected adapter: its
 * modules with their hooks, its configuration and its tensors. A leaf, so
 * that save.ts can write an adapter that sharelora.ts defines without the
 * two importing each other.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { LoraHook } from '../models/linear.js';
import type { Model } from '../models/types.js';
import type { AdapterConfig } from './config.js';
import type { Target } from './targets.js';

/** one projection's hook: the stored A [r, ≥ d_in] and B [≥ d_out, r], trainable or frozen, tied or not */
export interface AdapterHook extends LoraHook {
  readonly A: tf.Variable;
  readonly B: tf.Variable;
  /** per-layer vectors (Tied-LoRA's u and v, VeRA's d and b): u [r] scales A's rows, v [d_out] B's */
  readonly u?: tf.Variable;
  readonly v?: tf.Variable;
}

export interface AdaptedModule extends Target { hook: AdapterHook }

/** an injected adapter, as saving and loading read it (ShareLoraAdapter implements it) */
export interface InjectedAdapter {
  readonly model: Model;
  readonly options: AdapterConfig;
  readonly modules: readonly AdaptedModule[];
  readonly isUnloaded: boolean;
  /** the paths of the modules trained in full (PEFT's modules_to_save) */
  readonly savedModules: string[];
  readonly shareGroups: number[][];
  /** trainable tensors by PEFT name */
  namedParameters(): Map<string, tf.Variable>;
  /** frozen adapter tensors by name */
  frozenParameters(): Map<string, tf.Variable>;
}
