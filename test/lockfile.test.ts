/**
 * A fresh clone's `npm install` leaves the clone as it was (issue 23): the
 * committed lockfile's root entry already says what npm would write there
 * from package.json (it gained the `bin` entry on every install before), and
 * the install builds dist/ so that `npx sharelora` works right after it.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers.js';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { name: string; version: string; packages: Record<string, Record<string, unknown>> };

it('package-lock.json\'s root entry matches package.json (npm install would rewrite it otherwise)', () => {
  const root = lock.packages['']!;
  assert.equal(lock.name, pkg.name);
  assert.equal(lock.version, pkg.version);
  for (const field of ['bin', 'dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies', 'engines', 'license']) {
    assert.deepEqual(root[field], pkg[field], `package-lock.json packages[""].${field} (run npm install --package-lock-only --ignore-scripts)`);
  }
  for (const dep of Object.keys({ ...pkg.dependencies as object, ...pkg.devDependencies as object, ...pkg.optionalDependencies as object })) {
    assert.ok(lock.packages[`node_modules/${dep}`], `${dep} is in the lockfile`);
  }
  assert.equal(lock.packages['node_modules/@tensorflow/tfjs'], undefined, 'the @tensorflow/tfjs union package is gone');
});

it('npm install builds dist/ (prepare), so the bin entry exists right after it', () => {
  const scripts = pkg.scripts as Record<string, string>;
  assert.equal(scripts.prepare, 'npm run build');
  assert.match(scripts.build, /^tsc -p tsconfig\.json && node scripts\/bundle-tfjs-registrations\.mjs/);
  assert.deepEqual(pkg.bin, { sharelora: 'dist/src/cli.js' });
});
