/**
 * LLaMA (HF LlamaForCausalLM): RMSNorm, rotary embeddings (rotate_half form,
 * inv_freq = theta^(-2i/d)), grouped-query attention, SwiGLU MLP, untied or
 * tied LM head.
 */
import * as tf from '@tensorflow/tfjs-core';
import { attention, rmsNorm, silu } from '../backend/ops.js';
import { causalLmLoss } from './gpt2.js';
import { Linear } from './linear.js';
import { toInt2D } from './inputs.js';
import type { ForwardInput, ForwardOutput, Model, ModelConfig } from './types.js';
import type { WeightStore } from './weights.js';

interface Layer { inNorm: tf.Tensor1D; q: Linear; k: Linear; v: Linear; o: Linear; postNorm: tf.Tensor1D; gate: Linear; up: Linear; down: Linear }

export class Llama implements Model {
  readonly family = 'llama' as const;
  readonly task = 'causal-lm' as const;
  readonly linears = new Map<string, Linear>();
  readonly heads = new Map<string, Map<string, Linear>>();
  private embed: tf.Tensor2D;
  private layers: Layer[] = [];
  private norm: tf.Tensor1D;
  private lmHead: tf.Tensor2D; // [V, C]
  private ropeCache = new Map<number, { cos: tf.Tensor; sin: tf.Tensor }>();

  constructor(readonly config: ModelConfig, w: WeightStore) {
    const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, intermediate: I } = config;
    this.embed = w.take('model.embed_tokens.weight', [config.vocabSize, C]) as tf.Tensor2D;
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
        inNorm: w.take(`${p}.input_layernorm.weight`, [C]) as tf.Tensor1D,
        q: lin(`${p}.self_attn.q_proj`, C, H * D, attnBias), k: lin(`${p}.self_attn.k_proj`, C, Hkv * D, attnBias),
        v: lin(`${p}.self_attn.v_proj`, C, Hkv * D, attnBias), o: lin(`${p}.self_attn.o_proj`, H * D, C, attnBias),
        postNorm: w.take(`${p}.post_attention_layernorm.weight`, [C]) as tf.Tensor1D,
        gate: lin(`${p}.mlp.gate_proj`, C, I, mlpBias), up: lin(`${p}.mlp.up_proj`, C, I, mlpBias), down: lin(`${p}.mlp.down_proj`, I, C, mlpBias),
      });
    }
    this.norm = w.take('model.norm.weight', [C]) as tf.Tensor1D;
    this.lmHead = config.tieWordEmbeddings && !w.has('lm_head.weight') ? this.embed : w.take('lm_head.weight', [config.vocabSize, C]) as tf.Tensor2D;
  }

  get numLayers(): number { return this.config.layers; }

  /** cos/sin [T, D] for positions 0..T-1, kept across calls (they are constants). */
  private rope(T: number): { cos: tf.Tensor; sin: tf.Tensor } {
    let r = this.ropeCache.get(T);
    if (!r) {
      const D = this.config.headDim;
      const inv = Array.from({ length: D / 2 }, (_, i) => 1 / this.config.ropeTheta ** ((2 * i) / D));
      const ang = new Float32Array(T * D);
      // f32 like torch: inv_freq is float32 and the outer product is taken in float32
      const invF = Float32Array.from(inv);
      for (let t = 0; t < T; t++) for (let i = 0; i < D; i++) ang[t * D + i] = Math.fround(t * invF[i % (D / 2)]);
      const a = tf.tensor2d(ang, [T, D]);
      r = { cos: tf.keep(tf.cos(a)), sin: tf.keep(tf.sin(a)) };
      a.dispose();
      this.ropeCache.set(T, r);
    }
    return r;
  }

  forward({ inputIds, attentionMask, training = false }: ForwardInput): ForwardOutput {
    const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, eps } = this.config;
    const ids0 = toInt2D(inputIds, 'inputIds');
    const T0 = ids0.shape[1];
    ids0.dispose();
    const { cos, sin } = this.rope(T0);
    return tf.tidy(() => {
      const ids = toInt2D(inputIds, 'inputIds');
      const [B, T] = ids.shape;
      const mask = attentionMask ? toInt2D(attentionMask, 'attentionMask') : undefined;
      const rotate = (t: tf.Tensor4D): tf.Tensor4D => {
        const [x1, x2] = tf.split(t, 2, -1);
        return tf.add(tf.mul(t, cos), tf.mul(tf.concat([tf.neg(x2), x1], -1), sin)) as tf.Tensor4D;
      };
      const heads = (t: tf.Tensor, n: number) => tf.transpose(tf.reshape(t, [B, T, n, D]), [0, 2, 1, 3]) as tf.Tensor4D;
      let x = tf.gather(this.embed, ids) as tf.Tensor;
      for (const l of this.layers) {
        const h = rmsNorm(x, l.inNorm, eps);
        const q = rotate(heads(l.q.apply(h, training), H));
        const k = rotate(heads(l.k.apply(h, training), Hkv));
        const v = heads(l.v.apply(h, training), Hkv);
        const y = attention(q, k, v, { causal: true, keyMask: mask, scale: 1 / Math.sqrt(D) });
        x = tf.add(x, l.o.apply(tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, H * D]), training));
        const m = rmsNorm(x, l.postNorm, eps);
        x = tf.add(x, l.down.apply(tf.mul(silu(l.gate.apply(m, training)), l.up.apply(m, training)), training));
      }
      x = rmsNorm(x, this.norm, eps);
      const logits = tf.reshape(tf.matMul(tf.reshape(x, [B * T, C]), this.lmHead, false, true), [B, T, this.config.vocabSize]);
      return { logits };
    });
  }

  loss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
    return causalLmLoss(logits, labels);
  }

  baseParameterCount(): number {
    let n = this.embed.size + this.norm.size + (this.lmHead === this.embed ? 0 : this.lmHead.size);
    for (const l of this.layers) n += l.inNorm.size + l.postNorm.size;
    for (const l of this.linears.values()) n += l.parameterCount();
    return n;
  }

  dispose(): void {
    tf.dispose([this.embed, this.norm, ...this.layers.flatMap((l) => [l.inNorm, l.postNorm])]);
    if (this.lmHead !== this.embed) this.lmHead.dispose();
    for (const l of this.linears.values()) l.dispose();
    for (const r of this.ropeCache.values()) tf.dispose([r.cos, r.sin]);
  }
}
