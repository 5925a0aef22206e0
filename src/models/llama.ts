/**
 * LLaMA (HF LlamaForCausalLM / LlamaForSequenceClassification): RMSNorm,
 * rotary embeddings (rotate_half form, inv_freq = theta^(-2i/d)),
 * grouped-query attention, SwiGLU MLP, untied or tied LM head, or a `score`
 * head read at the last non-padding token.
 */
import * as tf from '@tensorflow/tfjs-core';
import { attention, rmsNorm, silu } from '../backend/ops.js';
import { toInt2D } from '../data/batch.js';
import { BaseModel } from './base-model.js';
import { lastToken, lmLogits, scoreHead } from './heads.js';
import { Linear } from './linear.js';
import { Param } from './param.js';
import type { ForwardInput, ForwardOutput, ModelConfig, Task } from './types.js';
import type { WeightStore } from './weights.js';

interface Layer { inNorm: Param<tf.Tensor1D>; q: Linear; k: Linear; v: Linear; o: Linear; postNorm: Param<tf.Tensor1D>; gate: Linear; up: Linear; down: Linear }

export class Llama extends BaseModel {
  readonly family = 'llama' as const;
  private embed: Param<tf.Tensor2D>;
  private layers: Layer[] = [];
  private norm: Param<tf.Tensor1D>;
  private lmHead?: Param<tf.Tensor2D>; // [V, C]; absent when tied to embed
  private score?: Linear;
  private ropeCache = new Map<number, { cos: tf.Tensor; sin: tf.Tensor }>();

  constructor(readonly config: ModelConfig, w: WeightStore, readonly task: Task = 'causal-lm', init?: { score?: tf.Tensor2D }) {
    super();
    const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, intermediate: I } = config;
    const param = <T extends tf.Tensor>(name: string, shape: number[]): Param<T> => {
      const x = new Param(name, w.take(name, shape) as T);
      this.params.push(x);
      return x;
    };
    this.embed = param('model.embed_tokens.weight', [config.vocabSize, C]);
    const attnBias = config.raw.attention_bias === true;
    const mlpBias = config.raw.mlp_bias === true;
    const lin = (n: string, i: number, o: number, bias: boolean): Linear => {
      const l = new Linear(n, w.take(`${n}.weight`, [o, i]) as tf.Tensor2D, bias ? w.take(`${n}.bias`, [o]) as tf.Tensor1D : undefined);
      this.linears.set(n, l);
      return l;
    };
    for (let i = 0; i < config.layers; i++) {
      const p = `model.layers.${i}`;
      this.layers.push({
        inNorm: param(`${p}.input_layernorm.weight`, [C]),
        q: lin(`${p}.self_attn.q_proj`, C, H * D, attnBias), k: lin(`${p}.self_attn.k_proj`, C, Hkv * D, attnBias),
        v: lin(`${p}.self_attn.v_proj`, C, Hkv * D, attnBias), o: lin(`${p}.self_attn.o_proj`, H * D, C, attnBias),
        postNorm: param(`${p}.post_attention_layernorm.weight`, [C]),
        gate: lin(`${p}.mlp.gate_proj`, C, I, mlpBias), up: lin(`${p}.mlp.up_proj`, C, I, mlpBias), down: lin(`${p}.mlp.down_proj`, I, C, mlpBias),
      });
    }
    this.norm = param('model.norm.weight', [C]);
    if (task === 'seq-cls') {
      this.score = scoreHead('LLaMA', config, w, init?.score);
      this.headLinears.push(this.score);
      this.heads.set('score', new Map([['', this.score]]));
    } else if (!(config.tieWordEmbeddings && !w.has('lm_head.weight'))) {
      this.lmHead = param('lm_head.weight', [config.vocabSize, C]);
    }
  }

  /** cos/sin [T, D] for positions 0..T-1, kept across calls (they are constants). */
  private rope(T: number): { cos: tf.Tensor; sin: tf.Tensor } {
    let r = this.ropeCache.get(T);
    if (!r) {
      const D = this.config.headDim;
      // float32 like torch: inv_freq is float32 and the outer product is taken in float32
      const inv = Float32Array.from({ length: D / 2 }, (_, i) => 1 / this.config.ropeTheta ** ((2 * i) / D));
      const ang = new Float32Array(T * D);
      for (let t = 0; t < T; t++) for (let i = 0; i < D; i++) ang[t * D + i] = Math.fround(t * inv[i % (D / 2)]);
      r = tf.tidy(() => { const a = tf.tensor3d(ang, [T, 1, D]); return { cos: tf.keep(tf.cos(a)), sin: tf.keep(tf.sin(a)) }; });
      this.ropeCache.set(T, r);
    }
    return r;
  }

  forward({ inputIds, attentionMask, training = false, headRows }: ForwardInput): ForwardOutput {
    if (headRows !== undefined) throw new Error(`forward: headRows is for a masked LM (RoBERTa); a ${this.config.modelType} ${this.task} model predicts at every position`);
    const { heads: H, kvHeads: Hkv, headDim: D, eps } = this.config;
    const T0 = inputIds instanceof tf.Tensor ? inputIds.shape[1] : (inputIds as ArrayLike<number>[])[0]?.length ?? 0;
    const { cos, sin } = this.rope(T0);
    return tf.tidy(() => {
      const ids = toInt2D(inputIds, 'inputIds'); // [B,T]
      const [B, T] = ids.shape;
      const mask = attentionMask ? toInt2D(attentionMask, 'attentionMask') : undefined;
      // rotary embedding on the token-major projection [B, T, n·D]; cos/sin are [T, 1, D]
      const rotate = (t: tf.Tensor, n: number): tf.Tensor3D => {
        const h = tf.reshape(t, [B, T, n, D]);
        const [x1, x2] = tf.split(h, 2, -1);
        return tf.reshape(tf.add(tf.mul(h, cos), tf.mul(tf.concat([tf.neg(x2), x1], -1), sin)), [B, T, n * D]) as tf.Tensor3D;
      };
      let x = tf.gather(this.embed.value, ids) as tf.Tensor; // [B,T,C]
      for (const l of this.layers) {
        const h = rmsNorm(x, l.inNorm.value, eps); // [B,T,C]
        const q = rotate(l.q.apply(h, training), H); // [B,T,H·D]
        const k = rotate(l.k.apply(h, training), Hkv); // [B,T,Hkv·D]
        const v = l.v.apply(h, training) as tf.Tensor3D; // [B,T,Hkv·D]
        const y = attention(q, k, v, { heads: H, kvHeads: Hkv, causal: true, keyMask: mask, scale: 1 / Math.sqrt(D) }); // [B,T,H·D]
        x = tf.add(x, l.o.apply(y, training)); // [B,T,C]
        const m = rmsNorm(x, l.postNorm.value, eps); // [B,T,C]
        x = tf.add(x, l.down.apply(tf.mul(silu(l.gate.apply(m, training)), l.up.apply(m, training)), training)); // SwiGLU through [B,T,I], back to [B,T,C]
      }
      x = rmsNorm(x, this.norm.value, eps); // [B,T,C]
      if (this.score) return { logits: this.score.apply(lastToken(x, mask), training) }; // [B,labels]
      return { logits: lmLogits(x, (this.lmHead ?? this.embed).value) }; // [B,T,V]
    });
  }

  override dispose(): void {
    super.dispose();
    for (const r of this.ropeCache.values()) tf.dispose([r.cos, r.sin]);
  }
}
