/**
 * Token data for pretraining. `prepare` runs where the npm data packages are
 * (this machine): it tokenises the corpus once, so the GPU machine, which
 * has none of them, reads only token ids.
 *
 * Both models share one byte-level BPE: GPT-2's, cut to its first `merges`
 * merges (ids equal GPT-2's below 256 + merges). The causal LM appends
 * `<|endoftext|>`; the encoder shifts every id up by 4 to put RoBERTa's
 * `<s> <pad> </s> <unk>` at 0..3 (HF derives position ids from pad_token_id,
 * so the pad id must be small) and appends `<mask>`.
 *
 * Files written to OUT:
 *   train.bin.br    train documents, each followed by SEP (= <|endoftext|>), uint16, brotli
 *   heldout.bin     SEP, then each held-out document followed by SEP, uint16 (documents in seeded order)
 *   heldout.json    per held-out document: source, first token, tokens, UTF-8 bytes
 *   unigram.json    train token counts (an add-one unigram baseline)
 *   stats.json      corpus, tokens and bytes per source and split; the command
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, brotliDecompressSync, constants as zc } from 'node:zlib';
import { gpt2Tokenizer, gpt2TokenizerJson, GPT2_CONFIG } from '../../src/data/gpt2-bpe.js';
import { TextTokenizer, type TokenizerJson } from '../../src/data/tokenizer.js';
import { pretrainingCorpus, type PretrainingDocument, type PretrainingSource } from '../../src/data/pretraining.js';
import { hash32 } from '../../src/data/split.js';

export const DEFAULT_MERGES = 8000;

/** GPT-2's BPE with only its first `merges` merges; `<|endoftext|>` = 256 + merges. */
export function causalTokenizer(merges = DEFAULT_MERGES, maxLength = 256): TextTokenizer {
  const base = gpt2Tokenizer();
  const vocabFull = base.json.model.vocab as Record<string, number>;
  const all = base.json.model.merges as string[];
  if (!Number.isSafeInteger(merges) || merges < 1 || merges > all.length) throw new RangeError(`merges must be an integer in [1, ${all.length}], got ${merges}`);
  const vocab: Record<string, number> = {};
  for (const [tok, id] of Object.entries(vocabFull)) if (id < 256 + merges) vocab[tok] = id;
  vocab['<|endoftext|>'] = 256 + merges;
  return new TextTokenizer(gpt2TokenizerJson(vocab, all.slice(0, merges)), { ...GPT2_CONFIG, model_max_length: maxLength });
}

export const MLM_SHIFT = 4;

/** The same BPE for RoBERTa: `<s>`=0 `<pad>`=1 `</s>`=2 `<unk>`=3, BPE ids + 4, `<mask>` last. */
export function mlmTokenizer(merges = DEFAULT_MERGES, maxLength = 256): TextTokenizer {
  const causal = causalTokenizer(merges);
  const src = causal.json.model.vocab as Record<string, number>;
  const vocab: Record<string, number> = { '<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3 };
  for (const [tok, id] of Object.entries(src)) if (tok !== '<|endoftext|>') vocab[tok] = id + MLM_SHIFT;
  const maskId = 256 + merges + MLM_SHIFT;
  vocab['<mask>'] = maskId;
  const special = (id: number, content: string, lstrip = false) => ({ id, content, single_word: false, lstrip, rstrip: false, normalized: false, special: true });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const json: TokenizerJson = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(0, '<s>'), special(1, '<pad>'), special(2, '</s>'), special(3, '<unk>'), special(maskId, '<mask>', true)],
    normalizer: null, pre_tokenizer: byteLevel,
    post_processor: { type: 'RobertaProcessing', sep: ['</s>', 2], cls: ['<s>', 0], trim_offsets: true, add_prefix_space: false },
    decoder: byteLevel,
    model: { ...causal.json.model, vocab, unk_token: '<unk>' },
  };
  return new TextTokenizer(json, {
    bos_token: '<s>', eos_token: '</s>', sep_token: '</s>', cls_token: '<s>', unk_token: '<unk>', pad_token: '<pad>', mask_token: '<mask>',
    add_prefix_space: false, model_max_length: maxLength, tokenizer_class: 'RobertaTokenizer', clean_up_tokenization_spaces: false,
  });
}

/**
 * Documents of all sources interleaved in a seeded order: any stretch of the
 * train stream is a mix, and a prefix of the held-out stream (a bounded
 * evaluation) is a random sample of its documents.
 */
export function seededOrder(docs: readonly PretrainingDocument[], seed: number): PretrainingDocument[] {
  return docs.map((d, i) => [hash32(d.id, seed), i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => docs[x[1]]!);
}

export interface HeldOutDoc { source: PretrainingSource; id: string; start: number; tokens: number; bytes: number }

export interface PrepareOptions { heldOutFraction: number; seed: number; merges: number; sources?: PretrainingSource[] }

/** Tokenise documents into the files above (`prepare` = this on the whole corpus). */
export function writeTokenData(out: string, train: PretrainingDocument[], heldOut: PretrainingDocument[], opts: { merges: number; seed: number }, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const tok = causalTokenizer(opts.merges);
  const sep = 256 + opts.merges;
  mkdirSync(out, { recursive: true });
  const counts = new Float64Array(sep + 1);
  const perSource: Record<string, { trainDocs: number; trainTokens: number; trainBytes: number; heldOutDocs: number; heldOutTokens: number; heldOutBytes: number }> = {};
  const src = (s: string) => (perSource[s] ??= { trainDocs: 0, trainTokens: 0, trainBytes: 0, heldOutDocs: 0, heldOutTokens: 0, heldOutBytes: 0 });
  const trainIds: number[] = [];
  for (const d of seededOrder(train, opts.seed)) {
    const ids = tok.encode(d.text, { addSpecialTokens: false });
    for (const t of ids) { trainIds.push(t); counts[t]++; }
    trainIds.push(sep);
    counts[sep]++;
    const s = src(d.source);
    s.trainDocs++; s.trainTokens += ids.length; s.trainBytes += Buffer.byteLength(d.text, 'utf8');
  }
  const heldIds: number[] = [sep];
  const docs: HeldOutDoc[] = [];
  for (const d of seededOrder(heldOut, opts.seed)) {
    const ids = tok.encode(d.text, { addSpecialTokens: false });
    const bytes = Buffer.byteLength(d.text, 'utf8');
    docs.push({ source: d.source, id: d.id, start: heldIds.length, tokens: ids.length, bytes });
    heldIds.push(...ids, sep);
    const s = src(d.source);
    s.heldOutDocs++; s.heldOutTokens += ids.length; s.heldOutBytes += bytes;
  }
  const u16 = (a: number[]) => Buffer.from(Uint16Array.from(a).buffer);
  // brotli: the train stream must travel to the GPU machine inside a 64 MiB working tree
  writeFileSync(join(out, 'train.bin.br'), brotliCompressSync(u16(trainIds), { params: { [zc.BROTLI_PARAM_QUALITY]: 9, [zc.BROTLI_PARAM_LGWIN]: 24 } }));
  writeFileSync(join(out, 'heldout.bin'), u16(heldIds));
  writeFileSync(join(out, 'heldout.json'), JSON.stringify(docs));
  writeFileSync(join(out, 'unigram.json'), JSON.stringify(Array.from(counts)));
  const stats = {
    merges: opts.merges, vocab: sep + 1, seed: opts.seed, trainTokens: trainIds.length, heldOutTokens: heldIds.length,
    trainDocs: train.length, heldOutDocs: heldOut.length,
    trainBytes: Object.values(perSource).reduce((a, s) => a + s.trainBytes, 0), heldOutBytes: docs.reduce((a, d) => a + d.bytes, 0),
    perSource, ...extra,
  };
  writeFileSync(join(out, 'stats.json'), JSON.stringify(stats, null, 1) + '\n');
  return stats;
}

export async function prepare(out: string, opts: PrepareOptions, command: string): Promise<Record<string, unknown>> {
  const corpus = await pretrainingCorpus({ heldOutFraction: opts.heldOutFraction, seed: opts.seed, ...(opts.sources ? { sources: opts.sources } : {}) });
  return writeTokenData(out, corpus.train, corpus.heldOut, opts, { heldOutFraction: opts.heldOutFraction, sources: corpus.options.sources, corpusStats: corpus.stats, command });
}

export interface TokenData {
  dir: string;
  merges: number;
  vocab: number;
  sep: number;
  train: Uint16Array;
  heldOut: Uint16Array;
  heldOutDocs: HeldOutDoc[];
  unigram: number[];
  stats: Record<string, unknown>;
}

export function readTokenData(dir: string): TokenData {
  const need = ['train.bin.br', 'heldout.bin', 'heldout.json', 'unigram.json', 'stats.json'];
  for (const f of need) if (!existsSync(join(dir, f))) throw new Error(`${join(dir, f)}: missing; run "prepare" first (it writes ${need.join(', ')})`);
  const stats = JSON.parse(readFileSync(join(dir, 'stats.json'), 'utf8')) as Record<string, unknown>;
  const merges = stats.merges as number;
  const u16 = (b: Buffer) => new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  const train = u16(brotliDecompressSync(readFileSync(join(dir, 'train.bin.br'))));
  const heldOut = u16(readFileSync(join(dir, 'heldout.bin')));
  if (train.length !== stats.trainTokens || heldOut.length !== stats.heldOutTokens) throw new Error(`${dir}: token files do not match stats.json (train ${train.length} vs ${stats.trainTokens}, held-out ${heldOut.length} vs ${stats.heldOutTokens})`);
  return {
    dir, merges, vocab: 256 + merges + 1, sep: 256 + merges, train, heldOut,
    heldOutDocs: JSON.parse(readFileSync(join(dir, 'heldout.json'), 'utf8')), unigram: JSON.parse(readFileSync(join(dir, 'unigram.json'), 'utf8')), stats,
  };
}

/**
 * Text from outside the corpus as held-out data for `eval-text`: each file is a
 * source; its paragraphs (split at blank lines) are packed into documents of at
 * most `docBytes` UTF-8 bytes, so a long book keeps paragraphs of context
 * together and a prefix of whole documents can be scored (--eval-tokens).
 * `unigram` is the model's training counts (its unigram-counts.json).
 */
export function textAsHeldOut(files: { source: string; text: string }[], tok: { encode(s: string, o: { addSpecialTokens: boolean }): number[] }, merges: number, unigram: number[], docBytes = 4000): TokenData {
  const sep = 256 + merges;
  const heldIds: number[] = [sep];
  const docs: HeldOutDoc[] = [];
  for (const f of files) {
    const paragraphs = f.text.replace(/\r\n/g, '\n').split(/\n[ \t]*\n+/).map((p) => p.trim()).filter((p) => p.length);
    if (!paragraphs.length) throw new Error(`${f.source}: no text (expected paragraphs separated by blank lines)`);
    let cur: string[] = [];
    let curBytes = 0; // of cur joined by blank lines
    const flush = () => {
      if (!cur.length) return;
      const ids = tok.encode(cur.join('\n\n'), { addSpecialTokens: false });
      docs.push({ source: f.source as PretrainingSource, id: `${f.source}:${docs.length}`, start: heldIds.length, tokens: ids.length, bytes: curBytes });
      heldIds.push(...ids, sep);
      cur = [];
      curBytes = 0;
    };
    for (const p of paragraphs) {
      const bytes = Buffer.byteLength(p, 'utf8');
      if (cur.length && curBytes + 2 + bytes > docBytes) flush();
      curBytes += (cur.length ? 2 : 0) + bytes;
      cur.push(p);
    }
    flush();
  }
  if (heldIds.some((t) => t > sep)) throw new Error(`the tokenizer produced ids above ${sep}: it is not the ${merges}-merge tokenizer`);
  return { dir: '(text)', merges, vocab: sep + 1, sep, train: new Uint16Array(0), heldOut: Uint16Array.from(heldIds), heldOutDocs: docs, unigram, stats: {} };
}

