/**
 * A RobertaForMaskedLM folder made from a trained causal GPT-2 of the same
 * width, depth and heads (issue 20): a warm start for the masked LM, which
 * from random initialisation sits at the no-context plateau for thousands of
 * updates. The mapping is not function-preserving (see README_TEXT); it only
 * hands the encoder embeddings and attention/MLP weights that already read
 * context.
 *
 *   node dist/scripts/pretrain/gpt2-to-roberta.js --gpt2 data/sharelora-gpt2-deep --tokenizer .pretrain/init/mlm-deep-s7 --out .pretrain/init/mlm-from-gpt2-deep
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readConfig } from '../../src/models/config.js';
import { readSafetensors, serializeSafetensors, type RawTensor, type TensorToWrite } from '../../src/models/safetensors.js';
import { CheckpointError } from '../../src/util/errors.js';
import { parseFlags, UsageError, type FlagSpec } from './run.js';

const FLAGS: FlagSpec = {
  gpt2: { kind: 'string', help: 'GPT-2 folder (config.json, model.safetensors; tokenizer.json if present is checked)' },
  tokenizer: { kind: 'string', help: 'RoBERTa folder whose tokenizer.json and tokenizer_config.json are copied (its vocabulary must be the GPT-2 one shifted by 4, <mask> last)' },
  out: { kind: 'string', help: 'folder to write; must be absent, empty, or an earlier output of this script' },
};

/** the special ids of our RoBERTa tokenizer (scripts/pretrain/data.ts mlmTokenizer): BPE ids follow them, <mask> is last */
const SPECIALS = ['<s>', '<pad>', '</s>', '<unk>'] as const;
const SHIFT = SPECIALS.length;
const TITLE = '# RobertaForMaskedLM warm start converted from a causal GPT-2';

export interface ConvertOptions { gpt2: string; out: string; tokenizer?: string; command?: string }
export interface ConvertResult { config: Record<string, unknown>; tensors: number; parameters: number }

function vocabOf(file: string): Map<string, number> {
  let json: any;
  try { json = JSON.parse(readFileSync(file, 'utf8')); } catch (e) { throw new CheckpointError(file, `cannot read it as JSON (${(e as Error).message})`); }
  const v = json?.model?.vocab;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new CheckpointError(file, 'field "model.vocab" is missing or not an object (expected a BPE tokenizer.json)');
  const out = new Map<string, number>(Object.entries(v as Record<string, number>));
  for (const t of json.added_tokens ?? []) out.set(t.content, t.id);
  return out;
}

/**
 * The ids must line up exactly, or every embedding row lands on the wrong
 * token: RoBERTa id = GPT-2 id + 4 for the BPE tokens, specials first,
 * <mask> last, and GPT-2's last id is <|endoftext|>.
 */
function checkTokenizers(gpt2Dir: string, robertaDir: string | undefined, V: number): void {
  const g = join(gpt2Dir, 'tokenizer.json');
  const gv = existsSync(g) ? vocabOf(g) : undefined;
  if (gv) {
    if (gv.size !== V) throw new CheckpointError(g, `has ${gv.size} tokens, but config.json's vocab_size is ${V}`);
    if (gv.get('<|endoftext|>') !== V - 1) throw new CheckpointError(g, `"<|endoftext|>" has id ${gv.get('<|endoftext|>')}, expected the last id ${V - 1}`);
  }
  if (!robertaDir) return;
  const r = join(robertaDir, 'tokenizer.json');
  if (!existsSync(r)) throw new CheckpointError(robertaDir, 'has no tokenizer.json (--tokenizer must be a RoBERTa model folder)');
  const rv = vocabOf(r);
  if (rv.size !== V + SHIFT) throw new CheckpointError(r, `has ${rv.size} tokens, expected ${V + SHIFT} (the GPT-2 vocab_size ${V} − <|endoftext|> + 4 specials + <mask>)`);
  SPECIALS.forEach((s, i) => { if (rv.get(s) !== i) throw new CheckpointError(r, `"${s}" has id ${rv.get(s)}, expected ${i}`); });
  if (rv.get('<mask>') !== V + SHIFT - 1) throw new CheckpointError(r, `"<mask>" has id ${rv.get('<mask>')}, expected the last id ${V + SHIFT - 1}`);
  if (gv) {
    for (const [tok, id] of gv) {
      if (id === V - 1) continue;
      if (rv.get(tok) !== id + SHIFT) throw new CheckpointError(r, `token ${JSON.stringify(tok)} has id ${rv.get(tok)}, expected ${id + SHIFT} (its GPT-2 id ${id} in ${g} + ${SHIFT})`);
    }
  }
}

/** refuse to overwrite anything but an earlier conversion */
function checkOut(out: string): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new UsageError(`gpt2-to-roberta: --out ${out} exists and is not a folder`);
  const files = readdirSync(out);
  if (!files.length) return;
  const readme = join(out, 'README.md');
  if (existsSync(readme) && readFileSync(readme, 'utf8').startsWith(TITLE)) return;
  throw new UsageError(`gpt2-to-roberta: --out ${out} holds other files (${files.slice(0, 3).join(', ')}) and is not an earlier output of this script; choose an empty or new folder`);
}

export function convertGpt2ToRoberta(o: ConvertOptions): ConvertResult {
  const cfgFile = join(o.gpt2, 'config.json');
  const cfg = readConfig(o.gpt2);
  if (cfg.modelType !== 'gpt2') throw new CheckpointError(cfgFile, `field "model_type" is ${JSON.stringify(cfg.modelType)}, expected "gpt2"`);
  if (cfg.raw.scale_attn_by_inverse_layer_idx === true) throw new CheckpointError(cfgFile, 'field "scale_attn_by_inverse_layer_idx" is true; RoBERTa attention has no per-layer scale, expected false or absent');
  if (cfg.raw.scale_attn_weights === false) throw new CheckpointError(cfgFile, 'field "scale_attn_weights" is false; RoBERTa always scales by 1/√head_dim, expected true or absent');
  if (!cfg.tieWordEmbeddings) throw new CheckpointError(cfgFile, 'field "tie_word_embeddings" is false; the masked-LM decoder is tied to the word embeddings, so an untied GPT-2 head would be lost (expected true)');
  const { vocabSize: V, hidden: C, layers: L, intermediate: I, maxPositions: P } = cfg;
  checkTokenizers(o.gpt2, o.tokenizer, V);
  checkOut(o.out);

  const file = join(o.gpt2, 'model.safetensors');
  if (!existsSync(file)) throw new CheckpointError(o.gpt2, 'has no model.safetensors (sharded GPT-2 checkpoints are not supported here)');
  const src = readSafetensors(file).tensors;
  const prefix = src.has('transformer.wte.weight') ? 'transformer.' : '';
  const used = new Set<string>();
  const take = (name: string, shape: number[]): RawTensor => {
    const t = src.get(prefix + name);
    if (!t) throw new CheckpointError(file, `tensor "${prefix + name}" is missing (expected shape [${shape}] from config.json)`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw new CheckpointError(file, `tensor "${prefix + name}" has shape [${t.shape}], but config.json (n_embd ${C}, n_layer ${L}, vocab_size ${V}, n_positions ${P}, inner ${I}) implies [${shape}]`);
    used.add(prefix + name);
    return t;
  };
  const out = new Map<string, TensorToWrite>();
  const put = (name: string, shape: number[], data: Float32Array) => out.set(name, { dtype: 'F16', shape, data });
  /** Conv1D stores [in, out]; Linear wants [out, in]: columns c0..c0+n of w become the rows */
  const linear = (w: RawTensor, c0: number, n: number): Float32Array => {
    const [rows, cols] = w.shape as [number, number];
    const r = new Float32Array(n * rows);
    for (let o = 0; o < n; o++) for (let i = 0; i < rows; i++) r[o * rows + i] = w.data[i * cols + c0 + o]!;
    return r;
  };
  const slice = (t: RawTensor, a: number, n: number) => Float32Array.from(t.data.subarray(a, a + n));
  const copy = (t: RawTensor) => Float32Array.from(t.data);

  // embeddings: BPE rows shifted by 4; <s> and </s> play <|endoftext|>'s part (document boundary); <unk> and <mask> have no GPT-2 row, so the mean; <pad> zero as in HF's init
  const wte = take('wte.weight', [V, C]);
  const word = new Float32Array((V + SHIFT) * C);
  word.set(wte.data.subarray(0, (V - 1) * C), SHIFT * C);
  const mean = new Float32Array(C);
  for (let r = 0; r < V; r++) for (let c = 0; c < C; c++) mean[c]! += wte.data[r * C + c]! / V;
  const eot = wte.data.subarray((V - 1) * C, V * C);
  word.set(eot, 0); word.set(eot, 2 * C); word.set(mean, 3 * C); word.set(mean, (V + SHIFT - 1) * C);
  put('roberta.embeddings.word_embeddings.weight', [V + SHIFT, C], word);
  // RoBERTa counts positions from padding_idx + 1 = 2; rows 0 and 1 are never used by unpadded text
  const pos = new Float32Array((P + 2) * C);
  pos.set(take('wpe.weight', [P, C]).data, 2 * C);
  put('roberta.embeddings.position_embeddings.weight', [P + 2, C], pos);
  put('roberta.embeddings.token_type_embeddings.weight', [1, C], new Float32Array(C));
  // pre-LN → post-LN: each GPT-2 LayerNorm moves to the post-LN norm whose output feeds the same sublayer
  const ln = (to: string, from: string) => {
    put(`${to}.weight`, [C], copy(take(`${from}.weight`, [C])));
    put(`${to}.bias`, [C], copy(take(`${from}.bias`, [C])));
  };
  ln('roberta.embeddings.LayerNorm', 'h.0.ln_1');
  for (let i = 0; i < L; i++) {
    const g = `h.${i}`, r = `roberta.encoder.layer.${i}`;
    const qkv = take(`${g}.attn.c_attn.weight`, [C, 3 * C]), qkvB = take(`${g}.attn.c_attn.bias`, [3 * C]);
    (['query', 'key', 'value'] as const).forEach((n, k) => {
      put(`${r}.attention.self.${n}.weight`, [C, C], linear(qkv, k * C, C));
      put(`${r}.attention.self.${n}.bias`, [C], slice(qkvB, k * C, C));
    });
    put(`${r}.attention.output.dense.weight`, [C, C], linear(take(`${g}.attn.c_proj.weight`, [C, C]), 0, C));
    put(`${r}.attention.output.dense.bias`, [C], copy(take(`${g}.attn.c_proj.bias`, [C])));
    ln(`${r}.attention.output.LayerNorm`, `${g}.ln_2`);
    put(`${r}.intermediate.dense.weight`, [I, C], linear(take(`${g}.mlp.c_fc.weight`, [C, I]), 0, I));
    put(`${r}.intermediate.dense.bias`, [I], copy(take(`${g}.mlp.c_fc.bias`, [I])));
    put(`${r}.output.dense.weight`, [C, I], linear(take(`${g}.mlp.c_proj.weight`, [I, C]), 0, C));
    put(`${r}.output.dense.bias`, [C], copy(take(`${g}.mlp.c_proj.bias`, [C])));
    ln(`${r}.output.LayerNorm`, i + 1 < L ? `h.${i + 1}.ln_1` : 'ln_f');
  }
  // the last output LayerNorm is already ln_f, so the head starts as close to identity as a dense → GELU → LayerNorm can
  const eye = new Float32Array(C * C);
  for (let c = 0; c < C; c++) eye[c * C + c] = 1;
  put('lm_head.dense.weight', [C, C], eye);
  put('lm_head.dense.bias', [C], new Float32Array(C));
  put('lm_head.layer_norm.weight', [C], new Float32Array(C).fill(1));
  put('lm_head.layer_norm.bias', [C], new Float32Array(C));
  put('lm_head.bias', [V + SHIFT], new Float32Array(V + SHIFT));

  const ignorable = new RegExp(`^${prefix.replace('.', '\\.')}h\\.\\d+\\.attn\\.(?:masked_)?bias$|^lm_head\\.weight$`);
  const unread = [...src.keys()].filter((n) => !used.has(n) && !ignorable.test(n));
  if (unread.length) throw new CheckpointError(file, `${unread.length} tensor(s) are not described by config.json (n_layer ${L}): ${unread.slice(0, 5).map((n) => `"${n}"`).join(', ')}`);

  const config: Record<string, unknown> = {
    model_type: 'roberta', architectures: ['RobertaForMaskedLM'], vocab_size: V + SHIFT, hidden_size: C, num_hidden_layers: L,
    num_attention_heads: cfg.heads, intermediate_size: I, hidden_act: 'gelu', max_position_embeddings: P + 2,
    type_vocab_size: 1, layer_norm_eps: cfg.eps, initializer_range: typeof cfg.raw.initializer_range === 'number' ? cfg.raw.initializer_range : 0.02,
    hidden_dropout_prob: 0, attention_probs_dropout_prob: 0, pad_token_id: 1, bos_token_id: 0, eos_token_id: 2,
    tie_word_embeddings: true, position_embedding_type: 'absolute', dtype: 'float16',
  };
  mkdirSync(o.out, { recursive: true });
  writeFileSync(join(o.out, 'model.safetensors'), serializeSafetensors(out));
  writeFileSync(join(o.out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  if (o.tokenizer) for (const f of ['tokenizer.json', 'tokenizer_config.json']) if (existsSync(join(o.tokenizer, f))) copyFileSync(join(o.tokenizer, f), join(o.out, f));
  const parameters = [...out.values()].reduce((a, t) => a + t.data.length, 0);
  writeFileSync(join(o.out, 'README.md'), readme(o, cfg.raw.activation_function, parameters));
  return { config, tensors: out.size, parameters };
}

function readme(o: ConvertOptions, act: unknown, parameters: number): string {
  return `${TITLE}

Made from \`${o.gpt2}\` by \`scripts/pretrain/gpt2-to-roberta.ts\`${o.tokenizer ? `, tokenizer copied from \`${o.tokenizer}\`` : ''}:

    ${o.command ?? `node dist/scripts/pretrain/gpt2-to-roberta.js --gpt2 ${o.gpt2}${o.tokenizer ? ` --tokenizer ${o.tokenizer}` : ''} --out ${o.out}`}

${parameters.toLocaleString('en')} parameters (float16, the decoder tied to the word embeddings). It is a
starting point for masked-LM training (\`--init\`), not a trained masked LM:

- word embeddings: row 4 + i is GPT-2's row i; \`<s>\` and \`</s>\` are \`<|endoftext|>\`'s row, \`<pad>\` zeros,
  \`<unk>\` and \`<mask>\` the mean of all GPT-2 rows; positions 2… are GPT-2's 0… (rows 0 and 1 zero); token type zeros.
- each layer's query/key/value, attention output, intermediate and output dense layers are GPT-2's c_attn (split in
  thirds), attn.c_proj, mlp.c_fc, mlp.c_proj, transposed from Conv1D [in, out] to Linear [out, in].
- LayerNorms: GPT-2 is pre-LN, RoBERTa post-LN, so each GPT-2 norm becomes the post-LN norm whose output feeds the
  same sublayer: embeddings.LayerNorm ← h.0.ln_1, layer i attention.output.LayerNorm ← h.i.ln_2, layer i
  output.LayerNorm ← h.(i+1).ln_1 (ln_f for the last).
- MLM head: dense identity with zero bias, layer_norm ones/zeros, decoder tied to the word embeddings, bias zeros.

What differs from the causal model, so the converted model does not compute what GPT-2 did: the residual stream
carries normalised values (post-LN) instead of GPT-2's raw sum; attention is bidirectional; GPT-2 was trained to
predict the *next* token at each position, the head here predicts the token *at* it; the head adds a GELU and a
LayerNorm GPT-2 did not have; and GPT-2's activation is ${JSON.stringify(act ?? 'gelu_new')} (the tanh approximation)
while RoBERTa's \`hidden_act: gelu\` is the exact erf GELU (they differ by < 0.001 per unit, kept as \`gelu\` so that
transformers computes what our encoder does).
`;
}

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2), FLAGS, 'gpt2-to-roberta');
  for (const k of ['gpt2', 'tokenizer', 'out'] as const) if (f[k] === undefined) throw new UsageError(`gpt2-to-roberta: --${k} is required`, FLAGS);
  const command = `node dist/scripts/pretrain/gpt2-to-roberta.js ${process.argv.slice(2).join(' ')}`;
  const r = convertGpt2ToRoberta({ gpt2: f.gpt2 as string, tokenizer: f.tokenizer as string, out: f.out as string, command });
  // the folder must load as what it claims to be; the cpu backend is enough to build it
  const { useBackend } = await import('../../src/backend/index.js');
  const { loadModelFromDir } = await import('../../src/models/load.js');
  await useBackend('cpu');
  const m = loadModelFromDir(f.out as string, { task: 'masked-lm' });
  console.log(`wrote ${f.out}: RobertaForMaskedLM, ${r.tensors} tensors, ${m.baseParameterCount().toLocaleString('en')} parameters (hidden ${r.config.hidden_size}, ${r.config.num_hidden_layers} layers, vocab ${r.config.vocab_size})`);
  m.dispose();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    await main();
  } catch (e) {
    if (e instanceof UsageError || e instanceof CheckpointError) { console.error(e.message); process.exitCode = 2; } else throw e;
  }
}
