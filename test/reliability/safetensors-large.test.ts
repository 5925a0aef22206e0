/**
 * A safetensors tensor over 2 GiB (a large model's embeddings in F32) is
 * read whole: readSync moves at most 2^31 − 1 bytes per call, which once gave
 * "length out of range … −1294967296". The file is sparse, so it costs no
 * disk; the read runs in a child process with a deadline and its own memory.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers.js';

it('reads one F32 tensor of 2 GiB + 16 bytes, first and last values included', { timeout: 90_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sl-st-large-'));
  const file = join(dir, 'big.safetensors');
  try {
    const numel = 2 ** 29 + 4;
    const bytes = numel * 4;
    let json = JSON.stringify({ big: { dtype: 'F32', shape: [numel], data_offsets: [0, bytes] } });
    while ((8 + json.length) % 8) json += ' ';
    const head = Buffer.alloc(8 + json.length);
    head.writeBigUInt64LE(BigInt(json.length), 0);
    head.write(json, 8);
    const fd = openSync(file, 'w');
    writeSync(fd, head, 0, head.length, 0);
    ftruncateSync(fd, head.length + bytes); // zeros, without writing them
    const first = Buffer.alloc(4); first.writeFloatLE(1.5);
    const last = Buffer.alloc(4); last.writeFloatLE(-2.25);
    writeSync(fd, first, 0, 4, head.length);
    writeSync(fd, last, 0, 4, head.length + bytes - 4);
    closeSync(fd);
    const script = `import { readSafetensors } from ${JSON.stringify(join(ROOT, 'dist', 'src', 'models', 'safetensors.js'))};
      const t = readSafetensors(process.argv[1]).tensors.get('big');
      console.log(JSON.stringify({ n: t.data.length, first: t.data[0], mid: t.data[${numel >> 1}], last: t.data[t.data.length - 1], shape: t.shape }));`;
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script, file], { timeout: 80_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`)); else resolve(stdout);
      });
    });
    assert.deepEqual(JSON.parse(out), { n: numel, first: 1.5, mid: 0, last: -2.25, shape: [numel] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
