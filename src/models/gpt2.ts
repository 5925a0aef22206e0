/**
 * GPT-2 (HF GPT2LMHeadModel): learned positions, pre-LN blocks, fused c_attn
 * (Conv1D, [in, 3·out]), gelu_new, LM head tied to wte.
 */
import * as tf from '@tensorflow/tfjs-core';
import { attention, crossEntropy, gelu, layerNorm } from '../backend/ops.js';
import { Linear } from './linear.js';
import { toInt2D } from './inputs.js';
import type { ForwardInput, ForwardOutput, Model, ModelConfig } from './types.js';
import type { WeightStore } from './weights.js';

interface Norm { w: tf.Tensor1D; b: tf.Tensor1D }
interface Block { ln1: Norm; attn: Linear; proj: Linear; ln2: Norm; fc: Linear; fcProj: Linear }

export class GPT2 implements Model {
  readonly family = 'gpt2' as const;
  readonly task = 'causal-lm' as const;
  readonly linears = new Map<string, Linear>();
  readonly heads = new Map<string, Map<string, Linear>>();
  private wte: tf.Tensor2D; // [V, C], also the LM head
  private wpe: tf.Tensor2D; // [P, C]
  private blocks: Block[] = [];
  private lnF: Norm;

  constructor(readonly config: ModelConfig, w: WeightStore) {
    const C = config.hidden;
    const p = w.has('transformer.wte.weight') ? 'transformer.' : '';
    this.wte = w.take(`${p}wte.weight`, [config.vocabSize, C]) as tf.Tensor2D;
    this.wpe = w.take(`${p}wpe.weight`, [config.maxPositions, C]) as tf.Tensor2D;
    const norm = (n: string): Norm => ({ w: w.take(`${n}.weight`, [C]) as tf.Tensor1D, b: w.take(`${n}.bias`, [C]) as tf.Tensor1D });
    const conv = (n: string, i: number, o: number): Linear => {
      const lin = new Linear(`transformer.${n}`, w.take(`${p}${n}.weight`, [i, o]) as tf.Tensor2D, w.take(`${p}${n}.bias`, [o]) as tf.Tensor1D, 'in_out');
      this.linears.set(lin.name, lin);
      return lin;
    };
    for (let i = 0; i < config.layers; i++) {
      const h = `h.${i}`;
      this.blocks.push({
        ln1: norm(`${p}${h}.ln_1`), attn: conv(`${h}.attn.c_attn`, C, 3 * C), proj: conv(`${h}.attn.c_proj`, C, C),
        ln2: norm(`${p}${h}.ln_2`), fc: conv(`${h}.mlp.c_fc`, C, config.intermediate), fcProj: conv(`${h}.mlp.c_proj`, config.intermediate, C),
      });
    }
    this.lnF = norm(`${p}ln_f`);
  }

  get numLayers(): number { return this.config.layers; }

  forward({ inputIds, attentionMask, training = false }: ForwardInput): ForwardOutput {
    const { hidden: C, heads: H, headDim: D, eps } = this.config;
    return tf.tidy(() => {
      const ids = toInt2D(inputIds, 'inputIds');
      const [B, T] = ids.shape;
      if (T > this.config.maxPositions) throw new Error(`sequence length ${T} exceeds n_positions ${this.config.maxPositions}`);
      const mask = attentionMask ? toInt2D(attentionMask, 'attentionMask') : undefined;
      let x = tf.add(tf.gather(this.wte, ids), tf.slice(this.wpe, [0, 0], [T, C])); // [B,T,C]
      const heads = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [B, T, H, D]), [0, 2, 1, 3]) as tf.Tensor4D;
      for (const b of this.blocks) {
        const qkv = b.attn.apply(layerNorm(x, b.ln1.w, b.ln1.b, eps), training); // [B,T,3C]
        const [q, k, v] = tf.split(qkv, 3, -1);
        const y = attention(heads(q), heads(k), heads(v), { causal: true, keyMask: mask as tf.Tensor2D | undefined, scale: 1 / Math.sqrt(D) });
        x = tf.add(x, b.proj.apply(tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, C]), training));
        const m = gelu(b.fc.apply(layerNorm(x, b.ln2.w, b.ln2.b, eps), training), 'tanh');
        x = tf.add(x, b.fcProj.apply(m, training));
      }
      x = layerNorm(x, this.lnF.w, this.lnF.b, eps);
      const logits = tf.reshape(tf.matMul(tf.reshape(x, [B * T, C]), this.wte, false, true), [B, T, this.config.vocabSize]);
      return { logits };
    });
  }

  loss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
    return causalLmLoss(logits, labels);
  }

  baseParameterCount(): number {
    let n = this.wte.size + this.wpe.size + this.lnF.w.size + this.lnF.b.size;
    for (const b of this.blocks) n += b.ln1.w.size * 4;
    for (const l of this.linears.values()) n += l.parameterCount();
    return n;
  }

  dispose(): void {
    tf.dispose([this.wte, this.wpe, this.lnF.w, this.lnF.b, ...this.blocks.flatMap((b) => [b.ln1.w, b.ln1.b, b.ln2.w, b.ln2.b])]);
    for (const l of this.linears.values()) l.dispose();
  }
}

/** HF's causal-LM loss: position t predicts label t+1; -100 is ignored. */
export function causalLmLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const [B, T, V] = logits.shape;
    const l = tf.slice(logits, [0, 0, 0], [B, T - 1, V]);
    const y = tf.slice(tf.cast(labels, 'int32'), [0, 1], [B, T - 1]);
    return crossEntropy(tf.reshape(l, [B * (T - 1), V]) as tf.Tensor2D, tf.reshape(y, [B * (T - 1)]) as tf.Tensor1D);
  });
}
