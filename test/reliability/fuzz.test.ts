/**
 * Property-based fuzzing of everything that parses untrusted files: valid
 * files from the malformed corpus's base/ are mutated (bit flips, truncation,
 * appended bytes, header-field edits, length-prefix edits) and must either
 * load or fail with CheckpointError/AdapterConfigError: never another
 * exception, never a hang. Data files (Parquet, CSV, JSON Lines) likewise load
 * or fail with a DataError that names the file. Seeds are fixed so a failure
 * reproduces.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { parquetWriteBuffer } from 'hyparquet-writer';
import * as tf from '@tensorflow/tfjs-core';
import { loadAdapter } from '../../src/adapters/peft.js';
import { AdapterConfigError } from '../../src/adapters/config.js';
import { DataError, readHfDataset } from '../../src/data/index.js';
import { parseConfig } from '../../src/models/config.js';
import { parseJsonStrict } from '../../src/util/json.js';
import { CheckpointError } from '../../src/util/errors.js';
import { loadModelFromDir } from '../../src/models/load.js';
import { parseSafetensors, readSafetensors, type SafetensorsFile } from '../../src/models/safetensors.js';
import type { Model } from '../../src/models/types.js';
import { ROOT, testBackend } from '../helpers.js';

const BASE = join(ROOT, 'test', 'fixtures', 'malformed', 'base');
const MODEL_ST = new Uint8Array(readFileSync(join(BASE, 'model', 'model.safetensors')));
const ADAPTER_ST = new Uint8Array(readFileSync(join(BASE, 'adapter', 'adapter_model.safetensors')));
const headerEnd = (b: Uint8Array) => 8 + Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
const schema = (f: SafetensorsFile) => [...f.tensors].map(([n, t]) => `${n}:${t.dtype}[${t.shape}]`).sort();

/** JSON values that break a field's type, sign, range or integrality */
const hostile = fc.constantFrom<unknown>(-1, 0, 1, 3, 2.5, 2 ** 31, 2 ** 53, 1e300, -0, '', 'F32', 'I64', 'toString', null, true, [], [0], [0, 1, 2], [-4, 4], {}, { a: 1 });

type Mutation = (b: Uint8Array) => Uint8Array;
const flips = fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.boolean(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 6 })
  .map((fs): Mutation => (b) => {
    const out = b.slice();
    // half the flips land in the header, where they are most likely to matter
    for (const [u, inHeader, bit] of fs) out[Math.floor(u * (inHeader ? Math.min(headerEnd(b), b.length) : b.length))] ^= 1 << bit;
    return out;
  });
const truncate = fc.double({ min: 0, max: 1, noNaN: true }).map((u): Mutation => (b) => b.slice(0, Math.floor(u * b.length)));
const append = fc.uint8Array({ minLength: 1, maxLength: 64 }).map((x): Mutation => (b) => { const o = new Uint8Array(b.length + x.length); o.set(b); o.set(x, b.length); return o; });
const lengthPrefix = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((n): Mutation => (b) => { const o = b.slice(); new DataView(o.buffer).setBigUint64(0, n, true); return o; });
const headerEdit = fc.tuple(fc.nat(), fc.constantFrom('dtype', 'shape', 'data_offsets', 'name', 'drop', 'duplicate'), hostile, fc.boolean())
  .map(([pick, field, value, keepLength]): Mutation => (b) => {
    const end = headerEnd(b);
    const text = new TextDecoder().decode(b.subarray(8, end));
    const h = JSON.parse(text) as Record<string, Record<string, unknown>>;
    const names = Object.keys(h).filter((k) => k !== '__metadata__');
    const name = names[pick % names.length];
    let json: string;
    if (field === 'duplicate') json = text.replace(`"${names[(pick + 1) % names.length]}":`, `"${name}":`);
    else {
      if (field === 'drop') delete h[name];
      else if (field === 'name') { h[String(value)] = h[name]; delete h[name]; }
      else h[name][field] = value;
      json = JSON.stringify(h);
    }
    const hb = new TextEncoder().encode(json);
    const o = new Uint8Array(8 + hb.length + b.length - end);
    new DataView(o.buffer).setBigUint64(0, BigInt(keepLength ? end - 8 : hb.length), true);
    o.set(hb, 8);
    o.set(b.subarray(end), 8 + hb.length);
    return o;
  });
const mutation = fc.oneof(flips, truncate, append, lengthPrefix, headerEdit);

/** parse, returning the error instead of throwing it, and fail on any error that is not typed */
function outcome(f: () => SafetensorsFile): SafetensorsFile | CheckpointError {
  const t0 = performance.now();
  try {
    return f();
  } catch (e) {
    assert.ok(e instanceof CheckpointError, `${(e as Error)?.name}: ${(e as Error)?.message}`);
    return e;
  } finally {
    assert.ok(performance.now() - t0 < 1000, 'a parse took over a second');
  }
}

describe('fuzzing the parsers', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'sl-fuzz-'));
  let model: Model;
  before(async () => {
    await testBackend();
    model = loadModelFromDir(join(BASE, 'model'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('safetensors: a mutated file parses to a consistent schema or throws CheckpointError; file and buffer readers agree', () => {
    const original = new Map([[MODEL_ST, schema(parseSafetensors(MODEL_ST))], [ADAPTER_ST, schema(parseSafetensors(ADAPTER_ST))]]);
    let i = 0;
    fc.assert(fc.property(fc.constantFrom(MODEL_ST, ADAPTER_ST), mutation, (valid, mutate) => {
      const bytes = mutate(valid);
      const r = outcome(() => parseSafetensors(bytes, 'fuzz'));
      if (!(r instanceof CheckpointError)) {
        for (const [n, t] of r.tensors) assert.equal(t.data.length, t.shape.reduce((a, b) => a * b, 1), `${n}: data length does not match its shape`);
        const sameHeader = bytes.length >= 8 && headerEnd(bytes) === headerEnd(valid) && Buffer.from(bytes.subarray(0, headerEnd(valid))).equals(Buffer.from(valid.subarray(0, headerEnd(valid))));
        if (sameHeader) assert.deepEqual(schema(r), original.get(valid), 'an untouched header must give the original schema');
      }
      if (i++ % 8 === 0) {
        const path = join(tmp, 'x.safetensors');
        writeFileSync(path, bytes);
        const fromFile = outcome(() => readSafetensors(path));
        if (r instanceof CheckpointError) assert.equal(fromFile instanceof CheckpointError && fromFile.problem, r.problem);
        else assert.deepEqual(fromFile instanceof CheckpointError ? fromFile.problem : schema(fromFile), schema(r));
      }
    }), { numRuns: 1500, seed: 20240611 });
  });

  it('config.json: mutated text parses or throws CheckpointError', () => {
    const text = readFileSync(join(BASE, 'model', 'config.json'), 'utf8');
    const edit = fc.oneof(
      fc.tuple(fc.nat(), fc.string({ maxLength: 4 })).map(([at, s]) => (t: string) => t.slice(0, at % t.length) + s + t.slice(at % t.length)),
      fc.tuple(fc.nat(), fc.nat({ max: 8 })).map(([at, n]) => (t: string) => t.slice(0, at % t.length) + t.slice(at % t.length + n)),
      fc.tuple(fc.nat(), hostile).map(([at, v]) => (t: string) => { const c = JSON.parse(t); const k = Object.keys(c)[at % Object.keys(c).length]; c[k] = v; return JSON.stringify(c); }),
    );
    fc.assert(fc.property(edit, (mutate) => {
      try {
        parseConfig(parseJsonStrict(mutate(text), 'config.json', 'config.json'), 'config.json');
      } catch (e) {
        assert.ok(e instanceof CheckpointError, `${(e as Error)?.name}: ${(e as Error)?.message}`);
      }
    }), { numRuns: 1500, seed: 7 });
  });

  it('adapter folders: a mutated config or weights file loads or throws a typed error, and leaves no tensors', async () => {
    const cfg = JSON.parse(readFileSync(join(BASE, 'adapter', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    const dir = join(tmp, 'adapter');
    const tensors = tf.memory().numTensors;
    const cfgEdit = fc.tuple(fc.constantFrom(...Object.keys(cfg), 'rank_pattern', 'layers_to_transform'), fc.oneof(hostile, fc.constantFrom('q_proj', ['q_proj'], ['k_proj'], '.*q_proj', 'LORA', 'SEQ_CLS', { share: 'B' })));
    await fc.assert(fc.asyncProperty(fc.oneof(cfgEdit, mutation), async (edit) => {
      rmSync(dir, { recursive: true, force: true });
      const w = Array.isArray(edit) ? ADAPTER_ST : (edit as Mutation)(ADAPTER_ST);
      const c = Array.isArray(edit) ? { ...cfg, [edit[0] as string]: edit[1] } : cfg;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(c));
      writeFileSync(join(dir, 'adapter_model.safetensors'), w);
      try {
        (await loadAdapter(model, dir)).unload();
      } catch (e) {
        assert.ok(e instanceof CheckpointError || e instanceof AdapterConfigError, `${(e as Error)?.name}: ${(e as Error)?.message}`);
      }
      assert.equal(tf.memory().numTensors, tensors, 'tensors left behind');
    }), { numRuns: 250, seed: 99 });
  });
});

describe('fuzzing the data readers', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'sl-fuzz-data-'));
  const leaked: unknown[] = [];
  const onLeak = (e: unknown) => leaked.push(e);
  before(() => process.on('unhandledRejection', onLeak));
  after(() => {
    process.off('unhandledRejection', onLeak);
    rmSync(tmp, { recursive: true, force: true });
  });

  /** load, or fail with a DataError that names the file; anything else (or a leaked rejection) fails the property */
  async function loadsOrNamesFile(file: string, bytes: Uint8Array | string, opts = {}): Promise<void> {
    writeFileSync(file, bytes);
    try {
      const { table, task } = await readHfDataset(file, opts);
      // what loaded must be usable: every row readable, every class label inside the label space
      assert.equal(table.objects().length, table.numRows());
      if (task.kind === 'classification' && task.labelField) {
        assert.ok(task.labelNames!.length <= 100_000);
        const labels = table.array(task.labelField) as number[];
        for (const v of labels) assert.ok(Number.isInteger(v) && v >= -1 && v < task.labelNames!.length, `label ${v}`);
        // CSV and JSON Lines carry no class names, so the classes are the ones seen, with none missing
        if (!file.endsWith('.parquet')) for (let k = 0; k < task.labelNames!.length; k++) assert.ok(labels.includes(k), `class ${k} of ${task.labelNames!.length} has no example`);
      }
    } catch (e) {
      assert.ok(e instanceof DataError, `${(e as Error)?.name}: ${(e as Error)?.message}`);
      assert.equal(e.file, file);
      assert.ok(e.message.includes(file), e.message);
    }
  }

  it('Parquet: a byte-mutated export loads or throws a DataError naming the file, and leaks no rejection', async () => {
    const features = { info: { features: { sentence: { dtype: 'string', _type: 'Value' }, label: { names: ['negative', 'positive'], _type: 'ClassLabel' }, idx: { dtype: 'int32', _type: 'Value' } } } };
    const valid = new Uint8Array(parquetWriteBuffer({
      columnData: [
        { name: 'sentence', data: ['a gorgeous , witty , seductive movie .', 'the mesmerizing performances', 'like a soft drink that has gone flat'], type: 'STRING' },
        { name: 'label', data: [1n, 0n, 1n], type: 'INT64' },
        { name: 'idx', data: [0, 1, 2], type: 'INT32' },
      ],
      kvMetadata: [{ key: 'huggingface', value: JSON.stringify(features) }],
    }));
    const bytes = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })
      .map((edits): Mutation => (b) => { const o = b.slice(); for (const [at, v] of edits) o[at % o.length] = v; return o; });
    const file = join(tmp, 'train.parquet');
    // a few mutations make the decoder loop for ever: the time limit ends those
    await fc.assert(fc.asyncProperty(fc.oneof({ arbitrary: bytes, weight: 4 }, truncate, append), async (mutate) => {
      await loadsOrNamesFile(file, mutate(valid), { decodeTimeoutMs: 2000 });
    }), { numRuns: 200, seed: 406 });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(leaked, [], 'an unhandled rejection escaped the Parquet decoder');
  });

  it('CSV and JSON Lines: mutated text loads or throws a DataError naming the file', async () => {
    const csv = 'sentence,label,idx\n"a gorgeous, witty movie",1,0\nthe mesmerizing performances,0,1\n"like a ""soft"" drink",1,2\n';
    const jsonl = '{"sentence": "a gorgeous movie", "label": 1, "idx": 0}\n{"sentence": "flat", "label": 0, "idx": 1}\n';
    const insert = fc.constantFrom('"', ',', '\n', '\r', '\\', '{', '}', ':', '__proto__', 'constructor', '7', '-1', '1e9', '0x3', '2.5', 'null', '\u0000', '\ufeff', '');
    // a whole CSV field or JSON value replaced: a header named __proto__, a label of 7, 1e9 or 0x3
    const replaceField = fc.tuple(fc.nat(), insert).map(([k, x]) => (t: string) => {
      const parts = t.split(/(?<=[,\n:])|(?=[,\n}])/);
      parts[k % parts.length] = /^[,\n:}]/.test(parts[k % parts.length]!) ? `${parts[k % parts.length]![0]}${x}` : x;
      return parts.join('');
    });
    const edit = fc.oneof(
      replaceField,
      fc.tuple(fc.nat(), insert).map(([at, x]) => (t: string) => t.slice(0, at % t.length) + x + t.slice(at % t.length)),
      fc.tuple(fc.nat(), fc.nat({ max: 8 })).map(([at, n]) => (t: string) => t.slice(0, at % t.length) + t.slice(at % t.length + n)),
    );
    for (const [name, text] of [['train.csv', csv], ['train.jsonl', jsonl]] as const) {
      const file = join(tmp, name);
      await fc.assert(fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 3 }), async (edits) => {
        await loadsOrNamesFile(file, edits.reduce<string>((t, f) => f(t), text));
      }), { numRuns: 150, seed: 12 });
    }
  });
});
