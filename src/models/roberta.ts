/**
 * RoBERTa (HF RobertaForSequenceClassification / RobertaForMaskedLM): post-LN
 * encoder, exact GELU, positions counted from pad_token_id + 1 over
 * non-padding tokens, and either a head on <s> (dense -> tanh -> out_proj) or
 * the masked-LM head on every position (dense -> gelu -> layer_norm -> the
 * word embeddings transposed + bias).
 */
import * as tf from '@tensorflow/tfjs-core';
import { attention, gelu, layerNorm } from '../backend/ops.js';
import { toInt2D } from '../data/batch.js';
import { BaseModel } from './base-model.js';
import { lmLogits } from './heads.js';
import { Linear } from './linear.js';
import { Param } from './param.js';
import type { ForwardInput, ForwardOutput, ModelConfig, Task } from './types.js';
import type { WeightStore } from './weights.js';

type Norm = { w: Param<tf.Tensor1D>; b: Param<tf.Tensor1D> };
interface Layer { q: Linear; k: Linear; v: Linear; o: Linear; ln1: Norm; up: Linear; down: Linear; ln2: Norm }

export type RobertaTask = Extract<Task, 'seq-cls' | 'masked-lm'>;

/** Initial values for heads the checkpoint lacks, by HF name. */
export interface RobertaInit { classifier?: Record<string, tf.Tensor>; lmHead?: Record<string, tf.Tensor> }

export class Roberta extends BaseModel {
  readonly family = 'roberta' as const;
  private wordEmb: Param<tf.Tensor2D>;
  private posEmb: Param<tf.Tensor2D>;
  private typeEmb: Param<tf.Tensor2D>;
  private embLn: Norm;
  private layers: Layer[] = [];
  private dense?: Linear;
  private outProj?: Linear;
  private lm?: { dense: Linear; ln: Norm; bias: Param<tf.Tensor1D>; decoder?: Param<tf.Tensor2D> };

  constructor(readonly config: ModelConfig, w: WeightStore, init?: RobertaInit, readonly task: RobertaTask = 'seq-cls') {
    super();
    const C = config.hidden;
    const param = <T extends tf.Tensor>(name: string, shape: number[], fresh?: Record<string, tf.Tensor>): Param<T> => {
      const x = new Param(name, (fresh?.[name] ?? w.take(name, shape)) as T);
      this.params.push(x);
      return x;
    };
    const e = 'roberta.embeddings';
    this.wordEmb = param(`${e}.word_embeddings.weight`, [config.vocabSize, C]);
    this.posEmb = param(`${e}.position_embeddings.weight`, [config.maxPositions, C]);
    this.typeEmb = param(`${e}.token_type_embeddings.weight`, [(config.raw.type_vocab_size as number | undefined) ?? 1, C]);
    const norm = (n: string, fresh?: Record<string, tf.Tensor>): Norm => ({ w: param(`${n}.weight`, [C], fresh), b: param(`${n}.bias`, [C], fresh) });
    this.embLn = norm(`${e}.LayerNorm`);
    const lin = (n: string, i: number, o: number, register = true, fresh?: Record<string, tf.Tensor>): Linear => {
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
    if (task === 'seq-cls') {
      this.dense = lin('classifier.dense', C, C, false, init?.classifier);
      this.outProj = lin('classifier.out_proj', C, config.numLabels, false, init?.classifier);
      this.headLinears.push(this.dense, this.outProj);
      this.heads.set('classifier', new Map([['dense', this.dense], ['out_proj', this.outProj]]));
    } else {
      const fresh = init?.lmHead;
      // HF ties lm_head.decoder.bias to lm_head.bias and saves the latter (older checkpoints may carry only the former)
      const biasName = fresh || w.has('lm_head.bias') || !w.has('lm_head.decoder.bias') ? 'lm_head.bias' : 'lm_head.decoder.bias';
      const bias = new Param('lm_head.bias', (fresh?.['lm_head.bias'] ?? w.take(biasName, [config.vocabSize])) as tf.Tensor1D);
      this.params.push(bias);
      this.lm = { dense: lin('lm_head.dense', C, C, false, fresh), ln: norm('lm_head.layer_norm', fresh), bias };
      this.headLinears.push(this.lm.dense);
      // tie_word_embeddings (true by default in HF) makes the decoder the word embeddings; only an untied model reads its own
      if (config.raw.tie_word_embeddings === false) this.lm.decoder = param('lm_head.decoder.weight', [config.vocabSize, C], fresh);
    }
  }

  /** The encoder's last hidden state [B, T, C] (HF's `last_hidden_state`), shared by both heads. */
  hiddenStates({ inputIds, attentionMask, training = false }: ForwardInput): tf.Tensor3D {
    const { hidden: C, heads: H, headDim: D, eps } = this.config;
    const pad = this.config.padTokenId ?? 1;
    const ln = (x: tf.Tensor, n: Norm) => layerNorm(x, n.w.value, n.b.value, eps);
    return tf.tidy(() => {
      const ids = toInt2D(inputIds, 'inputIds');
      const T = ids.shape[1];
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
        x = ln(tf.add(l.down.applyGelu(l.up.apply(x, training), act, training), x), l.ln2);
      }
      return x as tf.Tensor3D;
    });
  }

  /**
   * HF's RobertaLMHead on hidden states [B, T, C] (exact GELU whatever
   * hidden_act says). Public so that pretraining can apply it to the masked
   * positions only: the [B·T, V] logits of every position cost ~6× the rest
   * of a small model's step at 15% masking.
   */
  maskedLmLogits(x: tf.Tensor3D, training = false): tf.Tensor3D {
    if (!this.lm) throw new Error('maskedLmLogits: this RoBERTa has a classification head, not a masked-LM head');
    const lm = this.lm;
    return tf.tidy(() => {
      const h = layerNorm(gelu(lm.dense.apply(x, training), 'erf'), lm.ln.w.value, lm.ln.b.value, this.config.eps);
      return lmLogits(h, (lm.decoder ?? this.wordEmb).value, lm.bias.value);
    });
  }

  forward(input: ForwardInput): ForwardOutput {
    const C = this.config.hidden;
    const training = input.training ?? false;
    return tf.tidy(() => {
      const x = this.hiddenStates(input);
      const [B, T] = x.shape;
      if (input.headRows !== undefined) {
        if (!this.lm) throw new Error('forward: headRows is for the masked-LM head; this RoBERTa classifies (its head reads the first token)');
        const N = input.headRows.shape[0];
        return { logits: this.maskedLmLogits(tf.reshape(tf.gather(tf.reshape(x, [B * T, C]), input.headRows), [1, N, C]) as tf.Tensor3D, training) };
      }
      if (this.lm) return { logits: this.maskedLmLogits(x, training) };
      const cls = tf.reshape(tf.slice(x, [0, 0, 0], [B, 1, C]), [B, C]);
      return { logits: this.outProj!.apply(tf.tanh(this.dense!.apply(cls, training)), training) };
    });
  }
}
