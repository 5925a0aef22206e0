/**
 * GPT-2 (HF GPT2LMHeadModel / GPT2ForSequenceClassification): learned
 * positions, pre-LN blocks, fused c_attn (Conv1D, [in, 3·out]), gelu_new,
 * and either the LM head tied to wte or a `score` head read at each row's
 * last non-padding token.
 */
import * as tf from '@tensorflow/tfjs-core';
import { attentionPacked, crossEntropy, gelu, layerNorm } from '../backend/ops.js';
import { Linear } from './linear.js';
import { toInt2D } from './inputs.js';
import { countWeights, disposeWeights, Param, weightRefs, type WeightRef } from './param.js';
import type { ForwardInput, ForwardOutput, Model, ModelConfig, Task } from './types.js';
import type { WeightStore } from './weights.js';

type Norm = { w: Param<tf.Tensor1D>; b: Param<tf.Tensor1D> };
interface Block { ln1: Norm; attn: Linear; proj: Linear; ln2: Norm; fc: Linear; fcProj: Linear }

export class GPT2 implements Model {
  readonly family = 'gpt2' as const;
  readonly linears = new Map<string, Linear>();
  readonly heads = new Map<string, Map<string, Linear>>();
  private readonly params: Param[] = [];
  private wte: Param<tf.Tensor2D>; // [V, C], also the LM head
  private wpe: Param<tf.Tensor2D>; // [P, C]
  private blocks: Block[] = [];
  private lnF: Norm;
  private score?: Linear; // [labels, C], classification only

  constructor(readonly config: ModelConfig, w: WeightStore, readonly task: Task = 'causal-lm', init?: { score?: tf.Tensor2D }) {
    const C = config.hidden;
    const p = w.has('transformer.wte.weight') || !w.has('wte.weight') ? 'transformer.' : '';
    const param = <T extends tf.Tensor>(name: string, shape: number[]): Param<T> => {
      const x = new Param(`transformer.${name}`, w.take(`${p}${name}`, shape) as T);
      this.params.push(x);
      return x;
    };
    this.wte = param('wte.weight', [config.vocabSize, C]);
    this.wpe = param('wpe.weight', [config.maxPositions, C]);
    const norm = (n: string): Norm => ({ w: param(`${n}.weight`, [C]), b: param(`${n}.bias`, [C]) });
    const conv = (n: string, i: number, o: number): Linear => {
      const lin = new Linear(`transformer.${n}`, w.take(`${p}${n}.weight`, [i, o]) as tf.Tensor2D, w.take(`${p}${n}.bias`, [o]) as tf.Tensor1D, 'in_out');
      this.linears.set(lin.name, lin);
      return lin;
    };
    for (let i = 0; i < config.layers; i++) {
      const h = `h.${i}`;
      this.blocks.push({
        ln1: norm(`${h}.ln_1`), attn: conv(`${h}.attn.c_attn`, C, 3 * C), proj: conv(`${h}.attn.c_proj`, C, C),
        ln2: norm(`${h}.ln_2`), fc: conv(`${h}.mlp.c_fc`, C, config.intermediate), fcProj: conv(`${h}.mlp.c_proj`, config.intermediate, C),
      });
    }
    this.lnF = norm('ln_f');
    if (task === 'seq-cls') {
      const sw = w.has('score.weight') ? w.take('score.weight', [config.numLabels, C]) as tf.Tensor2D : init?.score;
      if (!sw) throw new Error('GPT-2 classification needs a score head (score.weight) in the checkpoint or an initial one');
      this.score = new Linear('score', sw, undefined, 'out_in');
      this.heads.set('score', new Map([['', this.score]]));
    }
  }

  get numLayers(): number { return this.config.layers; }

  forward({ inputIds, attentionMask, training = false }: ForwardInput): ForwardOutput {
    const { hidden: C, heads: H, headDim: D, eps } = this.config;
    const ln = (x: tf.Tensor, n: Norm) => layerNorm(x, n.w.value, n.b.value, eps);
    return tf.tidy(() => {
      const ids = toInt2D(inputIds, 'inputIds');
      const [B, T] = ids.shape;
      if (T > this.config.maxPositions) throw new Error(`sequence length ${T} exceeds n_positions ${this.config.maxPositions}`);
      const mask = attentionMask ? toInt2D(attentionMask, 'attentionMask') : undefined;
      let x = tf.add(tf.gather(this.wte.value, ids), tf.slice(this.wpe.value, [0, 0], [T, C])); // [B,T,C]
      for (const b of this.blocks) {
        const qkv = b.attn.apply(ln(x, b.ln1), training) as tf.Tensor3D; // [B,T,3C]
        const y = attentionPacked(qkv, { heads: H, causal: true, keyMask: mask, scale: 1 / Math.sqrt(D) }); // [B,T,C]
        x = tf.add(x, b.proj.apply(y, training));
        x = tf.add(x, b.fcProj.apply(gelu(b.fc.apply(ln(x, b.ln2), training), 'tanh'), training));
      }
      x = ln(x, this.lnF);
      if (this.score) return { logits: this.score.apply(lastToken(x, mask), training) };
      const logits = tf.reshape(tf.matMul(tf.reshape(x, [B * T, C]), this.wte.value, false, true), [B, T, this.config.vocabSize]);
      return { logits };
    });
  }

  loss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
    return this.task === 'causal-lm' ? causalLmLoss(logits, labels) : classificationLoss(logits, labels, this.config.numLabels);
  }

  weights(): Map<string, WeightRef> {
    return weightRefs(this.params, [...this.linears.values(), ...(this.score ? [this.score] : [])]);
  }

  baseParameterCount(): number {
    return countWeights(this.weights());
  }

  dispose(): void {
    disposeWeights(this.weights());
  }
}

/** Hidden state at each row's last attended position (HF's sequence-classification pooling for decoders). */
export function lastToken(x: tf.Tensor, mask: tf.Tensor2D | undefined): tf.Tensor2D {
  const [B, T] = x.shape;
  const last = mask ? tf.cast(tf.sub(tf.sum(mask, 1), 1), 'int32') : tf.fill([B], T - 1, 'int32');
  // a one-hot weighted sum, not gather: gather's gradient needs UnsortedSegmentSum, which wasm lacks
  const pick = tf.expandDims(tf.oneHot(last as tf.Tensor1D, T), -1); // [B,T,1]
  return tf.sum(tf.mul(x, pick), 1) as tf.Tensor2D;
}

/** HF's causal-LM loss: position t predicts label t+1; -100 is ignored. */
export function causalLmLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const [B, T, V] = logits.shape;
    // shift the labels, not the logits: position t predicts label t+1 and the
    // last position is ignored (-100), so the [B, T, V] logits are never
    // copied (a slice and its gradient's pad were 2 × 400 MB at GPT-2 scale)
    const y = tf.concat([tf.slice(tf.cast(labels, 'int32'), [0, 1], [B, T - 1]), tf.fill([B, 1], -100, 'int32')], 1);
    return crossEntropy(tf.reshape(logits, [B * T, V]) as tf.Tensor2D, tf.reshape(y, [B * T]) as tf.Tensor1D);
  });
}

/** HF's problem_type inference: one label is regression (MSE), more is single-label CE. */
export function classificationLoss(logits: tf.Tensor, labels: tf.Tensor, numLabels: number): tf.Scalar {
  return tf.tidy(() => {
    if (numLabels === 1) return tf.mean(tf.square(tf.sub(tf.reshape(logits, [-1]), tf.cast(tf.reshape(labels, [-1]), 'float32')))) as tf.Scalar;
    return crossEntropy(logits as tf.Tensor2D, tf.reshape(tf.cast(labels, 'int32'), [-1]) as tf.Tensor1D);
  });
}
