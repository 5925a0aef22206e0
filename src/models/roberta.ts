/**
 * RoBERTa (HF RobertaForSequenceClassification): post-LN encoder, exact GELU,
 * positions counted from pad_token_id + 1 over non-padding tokens, and a head
 * on <s>: dense -> tanh -> out_proj.
 */
import * as tf from '@tensorflow/tfjs-core';
import { attention, gelu, layerNorm } from '../backend/ops.js';
import { classificationLoss } from './gpt2.js';
import { Linear } from './linear.js';
import { toInt2D } from './inputs.js';
import { countWeights, disposeWeights, Param, weightRefs, type WeightRef } from './param.js';
import type { ForwardInput, ForwardOutput, Model, ModelConfig } from './types.js';
import type { WeightStore } from './weights.js';

type Norm = { w: Param<tf.Tensor1D>; b: Param<tf.Tensor1D> };
interface Layer { q: Linear; k: Linear; v: Linear; o: Linear; ln1: Norm; up: Linear; down: Linear; ln2: Norm }

export class Roberta implements Model {
  readonly family = 'roberta' as const;
  readonly task = 'seq-cls' as const;
  readonly linears = new Map<string, Linear>();
  readonly heads = new Map<string, Map<string, Linear>>();
  private readonly params: Param[] = [];
  private wordEmb: Param<tf.Tensor2D>;
  private posEmb: Param<tf.Tensor2D>;
  private typeEmb: Param<tf.Tensor2D>;
  private embLn: Norm;
  private layers: Layer[] = [];
  private dense: Linear;
  private outProj: Linear;

  constructor(readonly config: ModelConfig, w: WeightStore, init?: { classifier?: Record<string, tf.Tensor> }) {
    const C = config.hidden;
    const param = <T extends tf.Tensor>(name: string, shape: number[]): Param<T> => {
      const x = new Param(name, w.take(name, shape) as T);
      this.params.push(x);
      return x;
    };
    const e = 'roberta.embeddings';
    this.wordEmb = param(`${e}.word_embeddings.weight`, [config.vocabSize, C]);
    this.posEmb = param(`${e}.position_embeddings.weight`, [config.maxPositions, C]);
    this.typeEmb = param(`${e}.token_type_embeddings.weight`, [(config.raw.type_vocab_size as number | undefined) ?? 1, C]);
    const norm = (n: string): Norm => ({ w: param(`${n}.weight`, [C]), b: param(`${n}.bias`, [C]) });
    this.embLn = norm(`${e}.LayerNorm`);
    const lin = (n: string, i: number, o: number, register = true): Linear => {
      const fresh = init?.classifier;
      const l = new Linear(n, (fresh?.[`${n}.weight`] ?? w.take(`${n}.weight`, [o, i])) as tf.Tensor2D, (fresh?.[`${n}.bias`] ?? w.take(`${n}.bias`, [o])) as tf.Tensor1D);
      if (register) this.linears.set(n, l);
      return l;
    };
    for (let i = 0; i < config.layers; i++) {
      const p = `roberta.encoder.layer.${i}`;
      this.layers.push({
        q: lin(`${p}.attention.self.query`, C, C), k: lin(`${p}.attention.self.key`, C, C), v: lin(`${p}.attention.self.value`, C, C),
        o: lin(`${p}.attention.output.dense`, C, C), ln1: norm(`${p}.attention.output.LayerNorm`),
        up: lin(`${p}.intermediate.dense`, C, config.intermediate), down: lin(`${p}.output.dense`, config.intermediate, C),
        ln2: norm(`${p}.output.LayerNorm`),
      });
    }
    this.dense = lin('classifier.dense', C, C, false);
    this.outProj = lin('classifier.out_proj', C, config.numLabels, false);
    this.heads.set('classifier', new Map([['dense', this.dense], ['out_proj', this.outProj]]));
  }

  get numLayers(): number { return this.config.layers; }

  forward({ inputIds, attentionMask, training = false }: ForwardInput): ForwardOutput {
    const { hidden: C, heads: H, headDim: D, eps } = this.config;
    const pad = this.config.padTokenId ?? 1;
    const ln = (x: tf.Tensor, n: Norm) => layerNorm(x, n.w.value, n.b.value, eps);
    return tf.tidy(() => {
      const ids = toInt2D(inputIds, 'inputIds');
      const [B, T] = ids.shape;
      if (T + pad + 1 > this.config.maxPositions) throw new Error(`sequence length ${T} exceeds max_position_embeddings ${this.config.maxPositions} - ${pad + 1}`);
      const mask = attentionMask ? toInt2D(attentionMask, 'attentionMask') : tf.onesLike(ids);
      // HF create_position_ids_from_input_ids: padding keeps position pad, others count from pad+1
      const notPad = tf.cast(tf.notEqual(ids, pad), 'int32');
      const pos = tf.cast(tf.add(tf.mul(tf.cumsum(notPad, 1), notPad), pad), 'int32') as tf.Tensor2D;
      let x = tf.add(tf.add(tf.gather(this.wordEmb.value, ids), tf.gather(this.posEmb.value, pos)), tf.slice(this.typeEmb.value, [0, 0], [1, C]));
      x = ln(x, this.embLn);
      const act = this.config.activation === 'gelu_new' ? 'tanh' : 'erf';
      for (const l of this.layers) {
        const y = attention(l.q.apply(x, training) as tf.Tensor3D, l.k.apply(x, training) as tf.Tensor3D, l.v.apply(x, training) as tf.Tensor3D,
          { heads: H, causal: false, keyMask: mask, scale: 1 / Math.sqrt(D) });
        x = ln(tf.add(l.o.apply(y, training), x), l.ln1);
        x = ln(tf.add(l.down.apply(gelu(l.up.apply(x, training), act), training), x), l.ln2);
      }
      const cls = tf.reshape(tf.slice(x, [0, 0, 0], [B, 1, C]), [B, C]);
      return { logits: this.outProj.apply(tf.tanh(this.dense.apply(cls, training)), training) };
    });
  }

  loss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
    return classificationLoss(logits, labels, this.config.numLabels);
  }

  weights(): Map<string, WeightRef> {
    return weightRefs(this.params, [...this.linears.values(), this.dense, this.outProj]);
  }

  baseParameterCount(): number {
    return countWeights(this.weights());
  }

  dispose(): void {
    disposeWeights(this.weights());
  }
}
