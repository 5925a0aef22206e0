/**
 * GPT-2 (HF GPT2LMHeadModel / GPT2ForSequenceClassification): learned
 * positions, pre-LN blocks, fused c_attn (Conv1D, [in, 3·out]), gelu_new,
 * and either the LM head tied to wte or a `score` head read at each row's
 * last non-padding token.
 */
import * as tf from '@tensorflow/tfjs-core';
import { addLayerNorm, attentionPacked, attentionPackedRows, flatStream, layerNorm } from '../backend/ops.js';
import { toInt2D } from '../data/batch.js';
import { BaseModel } from './base-model.js';
import { lastToken, lmLogits, scoreHead } from './heads.js';
import { Linear } from './linear.js';
import { Param } from './param.js';
import type { ForwardInput, ForwardOutput, ModelConfig, Task } from './types.js';
import type { WeightStore } from './weights.js';

type Norm = { w: Param<tf.Tensor1D>; b: Param<tf.Tensor1D> };
interface Block { ln1: Norm; attn: Linear; proj: Linear; ln2: Norm; fc: Linear; fcProj: Linear }

export class GPT2 extends BaseModel {
  readonly family = 'gpt2' as const;
  private wte: Param<tf.Tensor2D>; // [V, C], also the LM head
  private wpe: Param<tf.Tensor2D>; // [P, C]
  private blocks: Block[] = [];
  private lnF: Norm;
  private score?: Linear; // [labels, C], classification only

  constructor(readonly config: ModelConfig, w: WeightStore, readonly task: Task = 'causal-lm', init?: { score?: tf.Tensor2D }) {
    super();
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
      this.score = scoreHead('GPT-2', config, w, init?.score);
      this.headLinears.push(this.score);
      this.heads.set('score', new Map([['', this.score]]));
    }
  }

  forward({ inputIds, attentionMask, training = false, headRows }: ForwardInput): ForwardOutput {
    if (headRows !== undefined) throw new Error(`forward: headRows is for a masked LM (RoBERTa); a ${this.config.modelType} ${this.task} model predicts at every position`);
    const { hidden: C, heads: H, headDim: D, eps } = this.config;
    const ln = (x: tf.Tensor, n: Norm) => layerNorm(x, n.w.value, n.b.value, eps);
    return tf.tidy(() => {
      const ids = toInt2D(inputIds, 'inputIds');
      const T = ids.shape[1];
      if (T > this.config.maxPositions) throw new Error(`sequence length ${T} exceeds n_positions ${this.config.maxPositions}`);
      const mask = attentionMask ? toInt2D(attentionMask, 'attentionMask') : undefined;
      let x = tf.add(tf.gather(this.wte.value, ids), tf.slice(this.wpe.value, [0, 0], [T, C])); // [B,T,C]
      // on our kernels the stream may stay [B·T, C] rows from here to the head: the projections then
      // skip the two Reshapes apiece (and their two gradients), ~16 engine ops a layer of a training step
      const flat = flatStream();
      const B = ids.shape[0];
      if (flat) x = tf.reshape(x, [B * T, C]);
      const proj = (l: Linear, v: tf.Tensor) => flat ? l.applyRows(v as tf.Tensor2D, training) : l.apply(v, training);
      // mlp.c_proj(gelu(h)), the GELU inside c_proj's op (Linear.applyGelu)
      const geluProj = (l: Linear, h: tf.Tensor) => flat ? l.applyRowsGelu(h as tf.Tensor2D, 'tanh', training) : l.applyGelu(h, 'tanh', training);
      const opts = { heads: H, causal: true, keyMask: mask, scale: 1 / Math.sqrt(D) };
      // each residual add goes with the norm that reads it (ops.addLayerNorm, one kernel where fused):
      // the attention's with ln_2, the MLP's with the next block's ln_1 or ln_f
      const norms = this.blocks.map((b) => b.ln1).concat(this.lnF);
      let xn = ln(x, norms[0]); // the residual stream x, normalized
      this.blocks.forEach((b, i) => {
        const qkv = proj(b.attn, xn); // [B,T,3C] or [B·T, 3C]
        const y = flat ? attentionPackedRows(qkv as tf.Tensor2D, T, opts) : attentionPacked(qkv as tf.Tensor3D, opts);
        [x, xn] = addLayerNorm(x, proj(b.proj, y), b.ln2.w.value, b.ln2.b.value, eps);
        const n = norms[i + 1];
        [x, xn] = addLayerNorm(x, geluProj(b.fcProj, proj(b.fc, xn)), n.w.value, n.b.value, eps);
      });
      x = xn;
      if (flat && !this.score) return { logits: tf.reshape(tf.matMul(x, this.wte.value, false, true), [B, T, this.config.vocabSize]) };
      if (flat) x = tf.reshape(x, [B, T, C]);
      if (this.score) return { logits: this.score.apply(lastToken(x, mask), training) };
      return { logits: lmLogits(x, this.wte.value) };
    });
  }
}

