/**
 * RoBERTa (HF RobertaForSequenceClassification): post-LN encoder, exact GELU,
 * positions counted from pad_token_id + 1 over non-padding tokens, and a head
 * on <s>: dense -> tanh -> out_proj.
 */
import * as tf from '@tensorflow/tfjs-core';
import { attention, crossEntropy, gelu, layerNorm } from '../backend/ops.js';
import { Linear } from './linear.js';
import { toInt2D } from './inputs.js';
import type { ForwardInput, ForwardOutput, Model, ModelConfig } from './types.js';
import type { WeightStore } from './weights.js';

interface Norm { w: tf.Tensor1D; b: tf.Tensor1D }
interface Layer { q: Linear; k: Linear; v: Linear; o: Linear; ln1: Norm; up: Linear; down: Linear; ln2: Norm }

export class Roberta implements Model {
  readonly family = 'roberta' as const;
  readonly task = 'seq-cls' as const;
  readonly linears = new Map<string, Linear>();
  readonly heads = new Map<string, Map<string, Linear>>();
  private wordEmb: tf.Tensor2D;
  private posEmb: tf.Tensor2D;
  private typeEmb: tf.Tensor2D;
  private embLn: Norm;
  private layers: Layer[] = [];
  private dense: Linear;
  private outProj: Linear;

  constructor(readonly config: ModelConfig, w: WeightStore) {
    const C = config.hidden;
    const e = 'roberta.embeddings';
    this.wordEmb = w.take(`${e}.word_embeddings.weight`, [config.vocabSize, C]) as tf.Tensor2D;
    this.posEmb = w.take(`${e}.position_embeddings.weight`, [config.maxPositions, C]) as tf.Tensor2D;
    const types = (config.raw.type_vocab_size as number | undefined) ?? 1;
    this.typeEmb = w.take(`${e}.token_type_embeddings.weight`, [types, C]) as tf.Tensor2D;
    const norm = (n: string): Norm => ({ w: w.take(`${n}.weight`, [C]) as tf.Tensor1D, b: w.take(`${n}.bias`, [C]) as tf.Tensor1D });
    this.embLn = norm(`${e}.LayerNorm`);
    const lin = (n: string, i: number, o: number, register = true): Linear => {
      const l = new Linear(n, w.take(`${n}.weight`, [o, i]) as tf.Tensor2D, w.take(`${n}.bias`, [o]) as tf.Tensor1D);
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
    return tf.tidy(() => {
      const ids = toInt2D(inputIds, 'inputIds');
      const [B, T] = ids.shape;
      const mask = attentionMask ? toInt2D(attentionMask, 'attentionMask') : tf.onesLike(ids);
      // HF create_position_ids_from_input_ids: padding keeps position pad, others count from pad+1
      const notPad = tf.cast(tf.notEqual(ids, pad), 'int32');
      const pos = tf.cast(tf.add(tf.mul(tf.cumsum(notPad, 1), notPad), pad), 'int32') as tf.Tensor2D;
      if (T + pad + 1 > this.config.maxPositions) throw new Error(`sequence length ${T} exceeds max_position_embeddings ${this.config.maxPositions} - ${pad + 1}`);
      let x = tf.add(tf.add(tf.gather(this.wordEmb, ids), tf.gather(this.posEmb, pos)), tf.slice(this.typeEmb, [0, 0], [1, C]));
      x = layerNorm(x, this.embLn.w, this.embLn.b, eps);
      const heads = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [B, T, H, D]), [0, 2, 1, 3]) as tf.Tensor4D;
      const act = this.config.activation === 'gelu_new' ? 'tanh' : 'erf';
      for (const l of this.layers) {
        const y = attention(heads(l.q.apply(x, training)), heads(l.k.apply(x, training)), heads(l.v.apply(x, training)),
          { causal: false, keyMask: mask, scale: 1 / Math.sqrt(D) });
        x = layerNorm(tf.add(l.o.apply(tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, C]), training), x), l.ln1.w, l.ln1.b, eps);
        const h = gelu(l.up.apply(x, training), act);
        x = layerNorm(tf.add(l.down.apply(h, training), x), l.ln2.w, l.ln2.b, eps);
      }
      const cls = tf.reshape(tf.slice(x, [0, 0, 0], [B, 1, C]), [B, C]);
      const logits = this.outProj.apply(tf.tanh(this.dense.apply(cls, training)), training);
      return { logits };
    });
  }

  /** HF's problem_type inference: one label is regression (MSE), more is single-label CE. */
  loss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
    return tf.tidy(() => {
      if (this.config.numLabels === 1) return tf.mean(tf.square(tf.sub(tf.reshape(logits, [-1]), tf.cast(tf.reshape(labels, [-1]), 'float32')))) as tf.Scalar;
      return crossEntropy(logits as tf.Tensor2D, tf.reshape(tf.cast(labels, 'int32'), [-1]) as tf.Tensor1D);
    });
  }

  baseParameterCount(): number {
    let n = this.wordEmb.size + this.posEmb.size + this.typeEmb.size + 2 * C(this.embLn) + this.layers.length * 4 * C(this.embLn);
    for (const l of this.linears.values()) n += l.parameterCount();
    return n + this.dense.parameterCount() + this.outProj.parameterCount();
  }

  dispose(): void {
    tf.dispose([this.wordEmb, this.posEmb, this.typeEmb, this.embLn.w, this.embLn.b, ...this.layers.flatMap((l) => [l.ln1.w, l.ln1.b, l.ln2.w, l.ln2.b])]);
    for (const l of this.linears.values()) l.dispose();
    this.dense.dispose();
    this.outProj.dispose();
  }
}

function C(n: Norm): number { return n.w.size; }
