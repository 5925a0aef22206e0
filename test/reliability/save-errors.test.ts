/**
 * A save the file system refuses (file-size limit, full disk, read-only
 * mount) throws SaveError naming the file being saved and what to do, and
 * leaves the file that was there unchanged and no temp file behind. The
 * conditions are real: `ulimit -f` (EFBIG) always, and a tiny or read-only
 * tmpfs (ENOSPC, EROFS) inside a private mount namespace where `unshare`
 * allows one (we run as root, so a chmod would not stop a write).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { tempDir } from '../data/paths.js';

const CHILD = fileURLToPath(new URL('./save-errors-child.js', import.meta.url));
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

interface Report { op?: string; name?: string; code?: string; file?: string; message?: string; saved?: boolean; files?: string[]; contents?: Record<string, string> }

/** Run the child under `setup` (shell commands run first, with $D the folder), return its reports. */
function runChild(dir: string, setup: string, wrap = (script: string) => ['bash', '-c', script]): Report[] {
  const [cmd, ...args] = wrap(`set -e; D=${quote(dir)}; ${setup}; exec ${quote(process.execPath)} ${quote(CHILD)}`);
  const run = spawnSync(cmd!, args, { env: { ...process.env, SHARELORA_SAVE_ERRORS: dir }, encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, `child failed (${run.signal ?? run.status}): ${run.stderr}`);
  return run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Report);
}

function checkRefused(reports: Report[], dir: string, code: string, hint: RegExp): void {
  const [tok, model, after] = reports as [Report, Report, Report];
  for (const [r, file] of [[tok, 'tokenizer.json'], [model, 'model.safetensors']] as const) {
    assert.equal(r.name, 'SaveError', `${r.op}: ${r.name}: ${r.message}`);
    assert.equal(r.code, code, r.message);
    assert.equal(r.file, join(dir, file));
    assert.match(r.message!, new RegExp(`^${join(dir, file).replace(/[.]/g, '\\.')}: cannot save \\(${code}\\): `));
    assert.match(r.message!, hint);
    assert.match(r.message!, /the file that was there before, if any, is unchanged/);
  }
  // nothing saved is lost, and no temp file is left
  assert.deepEqual(after.files, ['model.safetensors', 'tokenizer.json']);
  assert.deepEqual(after.contents, { 'model.safetensors': 'old weights', 'tokenizer.json': 'old tokenizer' });
}

const OLD_FILES = `printf 'old tokenizer' > "$D/tokenizer.json"; printf 'old weights' > "$D/model.safetensors"`;

function canUnshare(): boolean {
  return spawnSync('unshare', ['-Urm', 'bash', '-c', 'mount -t tmpfs -o size=64k tmpfs /tmp && mount -o remount,ro /tmp'], { stdio: 'ignore' }).status === 0;
}

describe('saves the file system refuses', () => {
  it('EFBIG (ulimit -f): SaveError naming the file; the old file stays', () => {
    const dir = tempDir('efbig');
    // 64 KiB: the old files fit, the 2 MB tokenizer and 750 KB model do not
    checkRefused(runChild(dir, `${OLD_FILES}; ulimit -f 64`), dir, 'EFBIG', /larger than this process may write \(ulimit -f/);
  });

  it('ENOSPC (a full 64 KiB tmpfs) and EROFS (a read-only mount)', (t) => {
    if (!canUnshare()) {
      t.skip('unshare -Urm cannot mount a tmpfs here (no user namespaces)');
      return;
    }
    const inNamespace = (script: string) => ['unshare', '-Urm', 'bash', '-c', script];
    const full = tempDir('enospc');
    checkRefused(runChild(full, `mount -t tmpfs -o size=64k tmpfs "$D"; ${OLD_FILES}`, inNamespace), full, 'ENOSPC', /the disk is full; free some space/);
    const ro = tempDir('erofs');
    checkRefused(runChild(ro, `mount -t tmpfs -o size=64k tmpfs "$D"; ${OLD_FILES}; mount -o remount,ro "$D"`, inNamespace), ro, 'EROFS', /the file system is read-only; save to a writable folder/);
  });
});
