/**
 * hyparquet trusts a file's page headers: the two corrupt files below made it
 * loop for ever in-process (one changed byte in a page header) and reject a
 * promise nobody awaited, which ends plain Node. Decoding runs in a worker
 * under a deadline, so each is a DataError naming the file, and the process
 * (and the next file) go on.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { DataError, readHfDataset } from '../../src/data/index.js';
import { REPO, tempDir } from './paths.js';

/** A three-row SST-2 style export; the byte offsets below are positions in exactly this file. */
function sst2(): Uint8Array {
  const features = { info: { features: { sentence: { dtype: 'string', _type: 'Value' }, label: { names: ['n', 'p'], _type: 'ClassLabel' }, idx: { dtype: 'int32', _type: 'Value' } } } };
  return new Uint8Array(parquetWriteBuffer({
    columnData: [
      { name: 'sentence', data: ['a gorgeous , witty , seductive movie .', 'the mesmerizing performances', 'like a soft drink'], type: 'STRING' },
      { name: 'label', data: [1n, 0n, 1n], type: 'INT64' },
      { name: 'idx', data: [0, 1, 2], type: 'INT32' },
    ],
    kvMetadata: [{ key: 'huggingface', value: JSON.stringify(features) }],
  }));
}

function mutated(edits: Array<[number, number]>): string {
  const b = sst2();
  for (const [at, v] of edits) b[at] = v;
  const file = join(tempDir('pq'), 'train.parquet');
  writeFileSync(file, b);
  return file;
}

describe('Parquet decoding in a worker', () => {
  it('a page header that makes the decoder loop for ever: decodeTimeoutMs ends it, and the next file decodes', async () => {
    const file = mutated([[22, 167]]);
    const t0 = performance.now();
    await assert.rejects(readHfDataset(file, { decodeTimeoutMs: 1000 }), (e: unknown) => e instanceof DataError && e.file === file &&
      /corrupt Parquet data \(decoding did not finish within 1000 ms\)/.test(e.message));
    assert.ok(performance.now() - t0 < 10_000);
    const { table } = await readHfDataset(mutated([]));
    assert.deepEqual(table.array('label'), [1, 0, 1]);
    await assert.rejects(readHfDataset(file, { decodeTimeoutMs: -1 }), /RangeError: decodeTimeoutMs must be a positive number/);
  });

  it('a rejection the decoder leaves unobserved is this file\'s DataError, not the process\'s', async () => {
    const leaked: unknown[] = [];
    const onLeak = (e: unknown) => leaked.push(e);
    process.on('unhandledRejection', onLeak);
    try {
      for (const edits of [[[243, 188], [31, 244]], [[359, 252], [4, 15]]] as Array<Array<[number, number]>>) {
        const file = mutated(edits);
        await assert.rejects(readHfDataset(file), (e: unknown) => e instanceof DataError && e.file === file && /corrupt Parquet data/.test(e.message));
      }
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      process.off('unhandledRejection', onLeak);
    }
    assert.deepEqual(leaked, []);
  });

  it('a process that read Parquet files exits when it is done (the idle decoder does not hold it)', () => {
    const file = mutated([]);
    const script = `import { readHfDataset } from ${JSON.stringify(join(REPO, 'dist', 'src', 'data', 'index.js'))};
      await readHfDataset(${JSON.stringify(file)}); await readHfDataset(${JSON.stringify(file)});
      process.stdout.write(String(performance.now()));`;
    const t0 = Date.now();
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(run.status, 0, run.stderr);
    const lingered = Date.now() - t0 - Number(run.stdout);
    // the decoder's idle timeout is 10 s; process start-up and exit take well under 3
    assert.ok(lingered < 3000, `the process lingered ${lingered} ms after its last read`);
  });
});
