/**
 * Token ids in tokenizer.json index embedding rows and size the arrays the
 * tokenizer library builds, so a hostile id must be refused up front, with
 * the file and the field named (an id of 1e9 used to spin for 72 s).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DataError, loadTokenizer, TextTokenizer, type TokenizerJson } from '../../src/data/index.js';
import { tempDir } from './paths.js';

function wordLevel(vocab: Record<string, unknown>, added: unknown[] = []): TokenizerJson {
  return {
    version: '1.0', added_tokens: added as TokenizerJson['added_tokens'], normalizer: null,
    pre_tokenizer: { type: 'Whitespace' }, post_processor: null, decoder: null,
    model: { type: 'WordLevel', vocab: vocab as Record<string, number>, unk_token: '[UNK]' },
  };
}

const refused = (json: TokenizerJson, pattern: RegExp) => {
  const t0 = performance.now();
  assert.throws(() => new TextTokenizer(json, {}, 'tok/tokenizer.json'), (e: unknown) => {
    assert.ok(e instanceof DataError, String(e));
    assert.equal(e.file, 'tok/tokenizer.json');
    assert.match(e.message, pattern);
    return true;
  });
  assert.ok(performance.now() - t0 < 1000, 'refusing took over a second');
};

describe('tokenizer.json ids', () => {
  it('a small valid vocabulary loads and encodes', () => {
    const tok = new TextTokenizer(wordLevel({ '[UNK]': 0, hello: 1, world: 2 }, [{ id: 3, content: '</s>', special: true }]), {}, 'tok/tokenizer.json');
    assert.deepEqual(tok.encode('hello world'), [1, 2]);
    assert.equal(tok.vocabSize, 4);
  });

  it('refuses ids that are negative, fractional, strings or beyond 2^24, naming the field', () => {
    refused(wordLevel({ '[UNK]': 0, hello: -7 }), /model\.vocab\["hello"\] is -7; expected a token id, an integer from 0 to 16777215/);
    refused(wordLevel({ '[UNK]': 0, hello: 2.5 }), /model\.vocab\["hello"\] is 2\.5; expected a token id/);
    refused(wordLevel({ '[UNK]': 0, hello: 'x' }), /model\.vocab\["hello"\] is "x"; expected a token id/);
    refused(wordLevel({ '[UNK]': 0, hello: 1e9 }), /model\.vocab\["hello"\] is 1000000000; expected a token id/);
    refused(wordLevel({ '[UNK]': 0, hello: 4e9 }), /is 4000000000; expected a token id/);
    refused(wordLevel({ '[UNK]': 0 }, [{ id: 1e9, content: '</s>' }]), /added_tokens\[0\]\.id is 1000000000; expected a token id/);
    refused(wordLevel({ '[UNK]': 0 }, [{ content: '</s>' }]), /added_tokens\[0\]\.id is undefined; expected a token id/);
    refused(wordLevel({ '[UNK]': 0 }, ['</s>']), /added_tokens\[0\] is "<\/s>"; expected \{id, content: string, \.\.\.\}/);
  });

  it('refuses an id far beyond the number of tokens (an id space mostly empty)', () => {
    refused(wordLevel({ '[UNK]': 0, hello: 1, world: 16_000_000 }), /model\.vocab\["world"\] is 16000000, but only 3 ids are used: 15999998 ids below it would be empty/);
    // a few reserved holes are fine
    assert.equal(new TextTokenizer(wordLevel({ '[UNK]': 0, hello: 1, world: 900 }), {}, 'x').vocabSize, 901);
  });

  it('loadTokenizer names the file on disk', () => {
    const dir = tempDir('tokids');
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(wordLevel({ '[UNK]': 0, hello: 4e9 })));
    assert.throws(() => loadTokenizer(dir), new RegExp(`${join(dir, 'tokenizer.json').replace(/[.]/g, '\\.')}: model\\.vocab\\["hello"\\] is 4000000000`));
  });
});
