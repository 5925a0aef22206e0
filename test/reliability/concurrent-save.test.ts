/**
 * Two trainers in two processes saving to one folder, while a third process
 * resumes from it: every save succeeds (they take turns on <dir>.lock), every
 * read gets one whole checkpoint, and nothing is left behind. A lock whose
 * process is gone is broken; a live one held elsewhere is named after the
 * wait.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LockError, withLock } from '../../src/util/lock.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'save-race-child.js');

function run(role: string, dir: string): { done: Promise<{ code: number | null; out: Record<string, unknown>; raw: string }> } {
  const child = spawn(process.execPath, [CHILD], { env: { ...process.env, SHARELORA_RACE: role, SHARELORA_RACE_DIR: dir }, stdio: ['ignore', 'pipe', 'inherit'] });
  let raw = '';
  child.stdout!.on('data', (d) => { raw += d; });
  const done = new Promise<{ code: number | null; out: Record<string, unknown>; raw: string }>((res) => child.on('exit', (code) => {
    const last = raw.trim().split('\n').pop() ?? '';
    let out: Record<string, unknown> = {};
    try { out = JSON.parse(last); } catch { /* reported through raw */ }
    res({ code, out, raw });
  }));
  return { done };
}

describe('concurrent saves', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'sl-race-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('two writers and a reader: every save succeeds and every read is one whole checkpoint', async () => {
    const dir = join(tmp, 'ckpt');
    const reader = run('reader', dir);
    const writers = [run('writer:4:8', dir), run('writer:8:8', dir)];
    const results = await Promise.all(writers.map((w) => w.done));
    writeFileSync(`${dir}.stop`, '');
    const read = await reader.done;
    for (const w of results) assert.equal(w.code, 0, `a writer failed: ${w.raw}`);
    assert.equal(read.code, 0, `the reader failed: ${read.raw}`);
    assert.ok((read.out.reads as number) > 0, `the reader never got a checkpoint: ${read.raw}`);
    assert.deepEqual(readdirSync(tmp).filter((n) => n.startsWith('ckpt')).sort(), ['ckpt', 'ckpt.stop'], 'no temporary folder, .prev or lock left');
  });

  it('a lock whose process is gone is broken; a lock held by a live process elsewhere is named after the wait', async () => {
    const target = join(tmp, 'locked');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(`${target}.lock`, JSON.stringify({ pid: dead, host: (await import('node:os')).hostname(), token: 'dead', since: 'then' }));
    assert.equal(await withLock(target, async () => 'ran', { timeoutMs: 1000 }), 'ran');
    assert.ok(!existsSync(`${target}.lock`), 'released');
    writeFileSync(`${target}.lock`, JSON.stringify({ pid: 1, host: 'another-host', token: 'live', since: 'then' }));
    await assert.rejects(withLock(target, async () => 'ran', { timeoutMs: 150, purpose: 'checkpoint x' }),
      (e: Error) => e instanceof LockError && /checkpoint x is locked by process 1 on another-host/.test(e.message) && /delete the lock file/.test(e.message));
    assert.ok(existsSync(`${target}.lock`), 'a live lock is left alone');
  });
});
