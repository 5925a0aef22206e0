/**
 * scripts/pretrain/gpt2-to-roberta.ts: the converted folder loads as a
 * RobertaForMaskedLM, and each of its tensors is the GPT-2 tensor the mapping
 * names, recomputed here from the GPT-2 file by plain index arithmetic
 * (shift by 4, Conv1D transpose, pre-LN → post-LN norm placement).
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModelFromDir } from '../src/models/load.js';
import { readSafetensors, serializeSafetensors, type TensorToWrite } from '../src/models/safetensors.js';
import { Rng } from '../src/util/rng.js';
import type { Model } from '../src/models/types.js';
import { convertGpt2ToRoberta } from '../scripts/pretrain/gpt2-to-roberta.js';
import { spawnSync } from 'node:child_process';
import { FIXTURES, ROOT, testBackend } from './helpers.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), `sharelora-g2r-${p}-`));

/**
 * The reference GPT-2 fixture with every LayerNorm drawn at random: its own
 * norms are all 1/0, which could not tell one placement from another.
 */
function fixtureWithDistinctNorms(): string {
  const dir = tmp('gpt2');
  const from = join(FIXTURES, 'gpt2', 'model');
  writeFileSync(join(dir, 'config.json'), readFileSync(join(from, 'config.json')));
  const rng = new Rng(5);
  const out = new Map<string, TensorToWrite>();
  for (const [n, t] of readSafetensors(join(from, 'model.safetensors')).tensors) {
    const data = /ln_(?:1|2|f)\.(?:weight|bias)$/.test(n) ? Float32Array.from(rng.normal(t.data.length, 0.5)) : Float32Array.from(t.data);
    out.set(n, { dtype: 'F32', shape: t.shape, data });
  }
  writeFileSync(join(dir, 'model.safetensors'), serializeSafetensors(out));
  return dir;
}
const GPT2 = fixtureWithDistinctNorms();

/** float16 keeps 11 significant bits: relative error ≤ 2^-11, and subnormals below 6e-5 an absolute 6e-8 */
function close(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const tol = 5e-4 * Math.abs(want[i]!) + 1e-7;
    if (Math.abs(got[i]! - want[i]!) > tol) assert.fail(`${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

/** a GPT-2 folder copy whose config.json fields are overridden */
function variant(over: Record<string, unknown>): string {
  const dir = tmp('gpt2');
  cpSync(GPT2, dir, { recursive: true });
  const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...c, ...over }));
  return dir;
}

function tokenizerJson(vocab: Record<string, number>, added: Array<[number, string]>): string {
  return JSON.stringify({ model: { type: 'BPE', vocab, merges: [] }, added_tokens: added.map(([id, content]) => ({ id, content, special: true })) });
}

describe('gpt2-to-roberta', () => {
  const g = readSafetensors(join(GPT2, 'model.safetensors')).tensors;
  const G = (n: string) => g.get(`transformer.${n}`)!.data;
  const cfg = JSON.parse(readFileSync(join(GPT2, 'config.json'), 'utf8'));
  const [V, C, L, P] = [cfg.vocab_size, cfg.n_embd, cfg.n_layer, cfg.n_positions] as number[];
  let model: Model;
  let R: (n: string) => Float32Array;
  const out = join(tmp('out'), 'mlm');

  before(async () => {
    await testBackend();
    const r = convertGpt2ToRoberta({ gpt2: GPT2, out });
    assert.equal(r.config.vocab_size, V! + 4);
    model = loadModelFromDir(out, { task: 'masked-lm' });
    const w = model.weights();
    const values = new Map<string, Float32Array>();
    for (const [n, ref] of w) values.set(n, await ref.get().data() as Float32Array);
    R = (n) => { const v = values.get(n); if (!v) throw new Error(`no tensor ${n}`); return v; };
  });

  it('loads as RobertaForMaskedLM of the GPT-2 shape, with the config fields of our pretraining script', async () => {
    assert.equal(model.family, 'roberta');
    assert.equal(model.task, 'masked-lm');
    assert.deepEqual([model.config.vocabSize, model.config.hidden, model.config.layers, model.config.heads, model.config.maxPositions], [V! + 4, C, L, cfg.n_head, P! + 2]);
    const c = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.deepEqual(Object.keys(c).sort(), ['architectures', 'attention_probs_dropout_prob', 'bos_token_id', 'dtype', 'eos_token_id', 'hidden_act', 'hidden_dropout_prob', 'hidden_size', 'initializer_range', 'intermediate_size', 'layer_norm_eps', 'max_position_embeddings', 'model_type', 'num_attention_heads', 'num_hidden_layers', 'pad_token_id', 'position_embedding_type', 'tie_word_embeddings', 'type_vocab_size', 'vocab_size']);
    assert.equal(c.hidden_act, 'gelu');
    assert.equal(readSafetensors(join(out, 'model.safetensors')).tensors.get('roberta.embeddings.word_embeddings.weight')!.dtype, 'F16');
    assert.match(readFileSync(join(out, 'README.md'), 'utf8'), /gelu_new[\s\S]*erf/);
    const logits = tf.tidy(() => model.forward({ inputIds: [[0, 7, V! + 3, 9, 2]] }).logits);
    assert.deepEqual(logits.shape, [1, 5, V! + 4]);
    assert.ok((await logits.data()).every(Number.isFinite));
    logits.dispose();
  });

  it('word embeddings: BPE rows shifted by 4; <s> </s> from <|endoftext|>, <pad> zero, <unk> <mask> the mean', () => {
    const wte = G('wte.weight'), word = R('roberta.embeddings.word_embeddings.weight');
    close(word.subarray(4 * C!, (V! + 3) * C!), wte.subarray(0, (V! - 1) * C!), 'rows 4..');
    const eot = wte.subarray((V! - 1) * C!, V! * C!);
    close(word.subarray(0, C!), eot, '<s>');
    close(word.subarray(2 * C!, 3 * C!), eot, '</s>');
    close(word.subarray(C!, 2 * C!), new Float32Array(C!), '<pad>');
    const mean = Array.from({ length: C! }, (_, c) => { let s = 0; for (let r = 0; r < V!; r++) s += wte[r * C! + c]!; return s / V!; });
    close(word.subarray(3 * C!, 4 * C!), mean, '<unk>');
    close(word.subarray((V! + 3) * C!), mean, '<mask>');
  });

  it('positions 2.. from wpe 0.., rows 0 and 1 and token types zero', () => {
    const pos = R('roberta.embeddings.position_embeddings.weight');
    close(pos.subarray(2 * C!), G('wpe.weight'), 'positions 2..');
    close(pos.subarray(0, 2 * C!), new Float32Array(2 * C!), 'positions 0, 1');
    close(R('roberta.embeddings.token_type_embeddings.weight'), new Float32Array(C!), 'token type');
  });

  it('attention and MLP weights: Conv1D [in, out] transposed to Linear [out, in], c_attn split in thirds', () => {
    const T = (w: ArrayLike<number>, rows: number, cols: number, c0: number, n: number) => Array.from({ length: n * rows }, (_, k) => w[(k % rows) * cols + c0 + Math.floor(k / rows)]!);
    for (let i = 0; i < L!; i++) {
      const r = `roberta.encoder.layer.${i}`, qkv = G(`h.${i}.attn.c_attn.weight`), qkvB = G(`h.${i}.attn.c_attn.bias`);
      ['query', 'key', 'value'].forEach((n, k) => {
        close(R(`${r}.attention.self.${n}.weight`), T(qkv, C!, 3 * C!, k * C!, C!), `${r} ${n}`);
        close(R(`${r}.attention.self.${n}.bias`), qkvB.subarray(k * C!, (k + 1) * C!), `${r} ${n} bias`);
      });
      close(R(`${r}.attention.output.dense.weight`), T(G(`h.${i}.attn.c_proj.weight`), C!, C!, 0, C!), `${r} attention.output.dense`);
      close(R(`${r}.intermediate.dense.weight`), T(G(`h.${i}.mlp.c_fc.weight`), C!, 4 * C!, 0, 4 * C!), `${r} intermediate`);
      close(R(`${r}.intermediate.dense.bias`), G(`h.${i}.mlp.c_fc.bias`), `${r} intermediate bias`);
      close(R(`${r}.output.dense.weight`), T(G(`h.${i}.mlp.c_proj.weight`), 4 * C!, C!, 0, C!), `${r} output.dense`);
      close(R(`${r}.output.dense.bias`), G(`h.${i}.mlp.c_proj.bias`), `${r} output bias`);
    }
    // one entry by hand, so that T's arithmetic is not the only witness: query[o=3][in=5] = c_attn[5][3], value[3][5] = c_attn[5][2C + 3]
    const qkv = G('h.1.attn.c_attn.weight');
    assert.ok(Math.abs(R('roberta.encoder.layer.1.attention.self.query.weight')[3 * C! + 5]! - qkv[5 * 3 * C! + 3]!) < 1e-3);
    assert.ok(Math.abs(R('roberta.encoder.layer.1.attention.self.value.weight')[3 * C! + 5]! - qkv[5 * 3 * C! + 2 * C! + 3]!) < 1e-3);
  });

  it('LayerNorms: embeddings ← h.0.ln_1, layer i attention ← h.i.ln_2, layer i output ← h.(i+1).ln_1, the last ← ln_f', () => {
    const same = (to: string, from: string) => { close(R(`${to}.weight`), G(`${from}.weight`), to); close(R(`${to}.bias`), G(`${from}.bias`), `${to} bias`); };
    same('roberta.embeddings.LayerNorm', 'h.0.ln_1');
    for (let i = 0; i < L!; i++) {
      same(`roberta.encoder.layer.${i}.attention.output.LayerNorm`, `h.${i}.ln_2`);
      same(`roberta.encoder.layer.${i}.output.LayerNorm`, i + 1 < L! ? `h.${i + 1}.ln_1` : 'ln_f');
    }
    // the norms differ from one another, or this test could not tell the placements apart
    assert.notDeepEqual(Array.from(G('h.0.ln_1.weight')), Array.from(G('h.0.ln_2.weight')));
  });

  it('MLM head: identity dense, unit LayerNorm, zero biases, decoder tied to the word embeddings', () => {
    close(R('lm_head.dense.weight'), Array.from({ length: C! * C! }, (_, k) => (k % (C! + 1) === 0 ? 1 : 0)), 'dense');
    close(R('lm_head.dense.bias'), new Float32Array(C!), 'dense bias');
    close(R('lm_head.layer_norm.weight'), new Float32Array(C!).fill(1), 'layer_norm');
    close(R('lm_head.layer_norm.bias'), new Float32Array(C!), 'layer_norm bias');
    close(R('lm_head.bias'), new Float32Array(V! + 4), 'bias');
    assert.ok(!model.weights().has('lm_head.decoder.weight'));
  });

  it('refuses a GPT-2 folder that does not match its config, naming file and field', () => {
    const o = () => join(tmp('bad'), 'x');
    assert.throws(() => convertGpt2ToRoberta({ gpt2: variant({ n_embd: 32 }), out: o() }), /model\.safetensors: tensor "transformer\.wte\.weight" has shape \[512,64\], but config\.json \(n_embd 32.*implies \[512,32\]/);
    assert.throws(() => convertGpt2ToRoberta({ gpt2: variant({ n_layer: 4 }), out: o() }), /model\.safetensors: tensor "transformer\.h\.3\.[\w.]+" is missing \(expected shape/);
    assert.throws(() => convertGpt2ToRoberta({ gpt2: variant({ n_layer: 2 }), out: o() }), /model\.safetensors: \d+ tensor\(s\) are not described by config\.json \(n_layer 2\): "transformer\.h\.2\./);
    assert.throws(() => convertGpt2ToRoberta({ gpt2: variant({ model_type: 'roberta', architectures: ['RobertaForMaskedLM'], hidden_size: 64, num_hidden_layers: 3, num_attention_heads: 4, intermediate_size: 256, max_position_embeddings: 66 }), out: o() }), /config\.json: field "model_type" is "roberta", expected "gpt2"/);
    assert.throws(() => convertGpt2ToRoberta({ gpt2: variant({ scale_attn_by_inverse_layer_idx: true }), out: o() }), /config\.json: field "scale_attn_by_inverse_layer_idx" is true/);
    assert.throws(() => convertGpt2ToRoberta({ gpt2: variant({ tie_word_embeddings: false }), out: o() }), /config\.json: field "tie_word_embeddings" is false/);
    // an output folder of something else is not overwritten; an earlier conversion is
    const other = tmp('other');
    writeFileSync(join(other, 'config.json'), '{}');
    assert.throws(() => convertGpt2ToRoberta({ gpt2: GPT2, out: other }), /--out .* holds other files \(config\.json\)/);
    assert.doesNotThrow(() => convertGpt2ToRoberta({ gpt2: GPT2, out }));
  });

  it('checks the two tokenizers line up (RoBERTa id = GPT-2 id + 4, specials first, <mask> last) and copies the RoBERTa one', () => {
    const gpt2 = variant({});
    const bpe = Object.fromEntries(Array.from({ length: V! - 1 }, (_, i) => [`t${i}`, i]));
    writeFileSync(join(gpt2, 'tokenizer.json'), tokenizerJson(bpe, [[V! - 1, '<|endoftext|>']]));
    const rob = tmp('rob');
    const shifted = Object.fromEntries(Object.entries(bpe).map(([t, i]) => [t, i + 4]));
    const specials: Array<[number, string]> = [[0, '<s>'], [1, '<pad>'], [2, '</s>'], [3, '<unk>'], [V! + 3, '<mask>']];
    writeFileSync(join(rob, 'tokenizer.json'), tokenizerJson(shifted, specials));
    writeFileSync(join(rob, 'tokenizer_config.json'), '{"tokenizer_class":"RobertaTokenizer"}');
    const good = join(tmp('tok'), 'm');
    convertGpt2ToRoberta({ gpt2, tokenizer: rob, out: good });
    assert.equal(readFileSync(join(good, 'tokenizer.json'), 'utf8'), readFileSync(join(rob, 'tokenizer.json'), 'utf8'));
    assert.ok(existsSync(join(good, 'tokenizer_config.json')));

    writeFileSync(join(rob, 'tokenizer.json'), tokenizerJson({ ...shifted, t7: 12, t8: 11 }, specials));
    assert.throws(() => convertGpt2ToRoberta({ gpt2, tokenizer: rob, out: join(tmp('tok'), 'm') }), /tokenizer\.json: token "t7" has id 12, expected 11 \(its GPT-2 id 7/);
    writeFileSync(join(rob, 'tokenizer.json'), tokenizerJson(shifted, [[0, '<s>'], [1, '<pad>'], [2, '</s>'], [3, '<unk>']]));
    assert.throws(() => convertGpt2ToRoberta({ gpt2, tokenizer: rob, out: join(tmp('tok'), 'm') }), /tokenizer\.json: has 515 tokens, expected 516/);
    const noTok = tmp('empty');
    mkdirSync(join(noTok, 'x'));
    assert.throws(() => convertGpt2ToRoberta({ gpt2, tokenizer: join(noTok, 'x'), out: join(tmp('tok'), 'm') }), /has no tokenizer\.json/);
    writeFileSync(join(gpt2, 'tokenizer.json'), tokenizerJson({ ...bpe, '<|endoftext|>': 0 }, []));
    assert.throws(() => convertGpt2ToRoberta({ gpt2, out: join(tmp('tok'), 'm') }), /tokenizer\.json: has 511 tokens, but config\.json's vocab_size is 512|"<\|endoftext\|>" has id 0/);
  });

  it('mlm-diagnose --init refuses a folder whose shape is not the preset\'s, naming file and field', () => {
    // --synthetic 511 gives the converted fixture's vocabulary (511 + <|endoftext|> + 4 specials + <mask> = 516), so only the depth differs
    const run = (...extra: string[]) => spawnSync(process.execPath, [join(ROOT, 'dist/scripts/pretrain/mlm-diagnose.js'), '--backend', 'cpu', '--synthetic', '511', '--steps', '1', '--init', out, ...extra], { encoding: 'utf8' });
    const r = run('--preset', 'd64-l2');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /mlm\/config\.json: field "num_hidden_layers" is 3, but --preset d64-l2 with this data expects 2/);
    assert.match(run('--preset', 'd64-l2', '--position-init', 'sinusoidal').stderr, /--position-init applies to random initialisation only/);
  });
});
