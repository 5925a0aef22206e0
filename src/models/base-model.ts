/**
 * What every architecture does the same way once its weights are in place:
 * the task's loss, the name → tensor map (what saveModel writes and full
 * fine-tuning swaps for variables), the parameter count and dispose. A
 * subclass builds its blocks and forward, and fills `params`, `linears` and
 * `headLinears` in checkpoint order.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { taskLoss } from './heads.js';
import type { Linear } from './linear.js';
import { countWeights, disposeWeights, weightRefs, type Param, type WeightRef } from './param.js';
import type { Family, ForwardInput, ForwardOutput, Model, ModelConfig, Task } from './types.js';

export abstract class BaseModel implements Model {
  abstract readonly family: Family;
  abstract readonly task: Task;
  abstract readonly config: ModelConfig;
  readonly linears = new Map<string, Linear>();
  readonly heads = new Map<string, Map<string, Linear>>();
  protected readonly params: Param[] = [];
  /** the task head's projections: saved with the base weights, never targeted by adapters (they are not in `linears`) */
  protected readonly headLinears: Linear[] = [];

  abstract forward(input: ForwardInput): ForwardOutput;

  get numLayers(): number { return this.config.layers; }

  loss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
    return taskLoss(this, logits, labels);
  }

  weights(): Map<string, WeightRef> {
    return weightRefs(this.params, [...this.linears.values(), ...this.headLinears]);
  }

  baseParameterCount(): number {
    return countWeights(this.weights());
  }

  dispose(): void {
    // an adapter still on the model goes with it: otherwise a notebook that loads a model per run leaks every run's adapter
    for (const l of this.linears.values()) l.lora?.release?.();
    disposeWeights(this.weights());
  }
}
