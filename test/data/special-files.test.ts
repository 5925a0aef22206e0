/**
 * Every file reader goes through the guarded reader: a FIFO, a device or a
 * folder where a data, tokenizer or config file should be is refused before
 * it is opened (a FIFO used to block forever, /dev/zero to abort with
 * std::bad_alloc), and a file over its size cap is refused before it is read.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, ftruncateSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { DataError, loadTokenizer, readHfDataset } from '../../src/data/index.js';
import { tempDir } from './paths.js';

const CHILD = fileURLToPath(new URL('./special-files-child.js', import.meta.url));

function mkfifo(path: string): void {
  execFileSync('mkfifo', [path]);
}

describe('special files where a file should be', () => {
  it('every reader refuses FIFOs, /dev/zero and folders at once, naming the file', (t) => {
    try {
      execFileSync('mkfifo', ['--version'], { stdio: 'ignore' });
    } catch {
      t.skip('no mkfifo on this platform');
      return;
    }
    const dir = tempDir('special');
    for (const sub of ['tok-fifo', 'tok-zero', 'tok-folder/tokenizer.json', 'merges-fifo', 'glue/SST-2', 'model-fifo', 'model-zero']) mkdirSync(join(dir, sub), { recursive: true });
    mkfifo(join(dir, 'tok-fifo', 'tokenizer.json'));
    symlinkSync('/dev/zero', join(dir, 'tok-zero', 'tokenizer.json'));
    writeFileSync(join(dir, 'merges-fifo', 'vocab.json'), JSON.stringify({ a: 0, b: 1, ab: 2, '<|endoftext|>': 3 }));
    mkfifo(join(dir, 'merges-fifo', 'merges.txt'));
    mkfifo(join(dir, 'glue', 'SST-2', 'train.tsv'));
    mkfifo(join(dir, 'fifo.csv'));
    mkfifo(join(dir, 'fifo.jsonl'));
    mkfifo(join(dir, 'fifo.parquet'));
    symlinkSync('/dev/zero', join(dir, 'zero.csv'));
    mkfifo(join(dir, 'model-fifo', 'config.json'));
    symlinkSync('/dev/zero', join(dir, 'model-zero', 'config.json'));

    // a reader that blocks cannot be interrupted in-process: the child gets a deadline instead
    const run = spawnSync(process.execPath, [CHILD], { env: { ...process.env, SHARELORA_SPECIAL_FILES: dir }, encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
    const results = run.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { name: string; ms: number; error?: string; message?: string; file?: string });
    assert.equal(results.length, 13, `the child stopped after ${results.map((r) => r.name).join(', ')} (signal ${run.signal}); a reader blocked on a special file\n${run.stderr}`);
    const expected: Record<string, [string, string, RegExp]> = {
      'tokenizer.json FIFO': ['DataError', 'tok-fifo/tokenizer.json', /it is a FIFO/],
      'tokenizer.json -> /dev/zero': ['DataError', 'tok-zero/tokenizer.json', /it is a character device/],
      'tokenizer.json folder': ['DataError', 'tok-folder/tokenizer.json', /it is a folder/],
      'merges.txt FIFO': ['DataError', 'merges-fifo/merges.txt', /it is a FIFO/],
      'GLUE train.tsv FIFO': ['DataError', 'glue/SST-2/train.tsv', /it is a FIFO/],
      'CSV FIFO': ['DataError', 'fifo.csv', /it is a FIFO/],
      'JSON Lines FIFO': ['DataError', 'fifo.jsonl', /it is a FIFO/],
      'Parquet FIFO': ['DataError', 'fifo.parquet', /it is a FIFO/],
      'CSV -> /dev/zero': ['DataError', 'zero.csv', /it is a character device/],
      'E2E FIFO': ['DataError', 'fifo.csv', /it is a FIFO/],
      'Alpaca FIFO': ['DataError', 'fifo.jsonl', /it is a FIFO/],
      'config.json FIFO': ['CheckpointError', 'model-fifo/config.json', /it is a FIFO/],
      'config.json -> /dev/zero': ['CheckpointError', 'model-zero/config.json', /it is a character device/],
    };
    for (const r of results) {
      const [error, file, pattern] = expected[r.name]!;
      assert.equal(r.error, error, `${r.name}: ${r.error}: ${r.message}`);
      assert.equal(r.file, join(dir, file), r.name);
      assert.match(r.message!, /cannot read \(not a regular file\)/, r.name);
      assert.match(r.message!, pattern, r.name);
      assert.ok(r.ms < 1000, `${r.name} took ${r.ms} ms`);
    }
  });

  it('a file over its size cap is refused before it is read, naming file, size and cap', async () => {
    const dir = tempDir('cap');
    // sparse: the size is real, the disk blocks are not
    const sparse = (path: string, bytes: number) => {
      const fd = openSync(path, 'w');
      ftruncateSync(fd, bytes);
      closeSync(fd);
    };
    sparse(join(dir, 'tokenizer.json'), 65 << 20);
    assert.throws(() => loadTokenizer(dir), (e: unknown) => e instanceof DataError && e.file === join(dir, 'tokenizer.json') &&
      /tokenizer\.json is 68157440 bytes \(65\.0 MiB\), over the 67108864 bytes \(64\.0 MiB\) limit/.test(e.message));
    sparse(join(dir, 'big.csv'), 501 << 20);
    await assert.rejects(readHfDataset(join(dir, 'big.csv')), (e: unknown) => e instanceof DataError && e.file === join(dir, 'big.csv') &&
      /data file is 525336576 bytes \(501\.0 MiB\), over the 524288000 bytes \(500\.0 MiB\) limit/.test(e.message));
  });
});
