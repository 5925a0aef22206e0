/**
 * useBackend('auto') looks for a GPU adapter without printing Dawn's own
 * warnings (on lavapipe: "maxDynamicUniformBuffersPerPipelineLayout
 * artificially reduced …", on every start, even when it settles on wasm);
 * SHARELORA_DAWN_LOG=1 lets them through (issue 23).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './helpers.js';

const INDEX = pathToFileURL(join(ROOT, 'dist', 'src', 'index.js')).href;

function auto(env: NodeJS.ProcessEnv): { name: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { useBackend } from ${JSON.stringify(INDEX)}; console.log((await useBackend('auto')).name);`],
    { encoding: 'utf8', timeout: 90_000, env: { ...process.env, SHARELORA_BACKEND: '', SHARELORA_DAWN_LOG: '', ...env } });
  assert.equal(r.signal, null, `ran past its deadline: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  return { name: r.stdout.trim(), stderr: r.stderr };
}

it('useBackend("auto") prints nothing of Dawn\'s; SHARELORA_DAWN_LOG=1 shows what Dawn says', { timeout: 200_000 }, () => {
  const quiet = auto({});
  assert.equal(quiet.stderr, '', 'nothing on stderr');
  const loud = auto({ SHARELORA_DAWN_LOG: '1' });
  assert.equal(loud.name, quiet.name, 'the same choice either way');
  // Only Mesa's software adapter is known to warn; on a machine without it Dawn may have nothing to say.
  const dawn = spawnSync(process.execPath, ['--input-type=module', '-e', "const w = await import('webgpu'); const a = await w.create([]).requestAdapter(); console.log(a?.info?.description ?? ''); process.exit(0);"],
    { encoding: 'utf8', timeout: 60_000, cwd: ROOT });
  if (/llvmpipe/.test(dawn.stdout)) {
    assert.match(dawn.stderr, /artificially reduced/, 'Dawn itself warns on lavapipe (the noise this test is about)');
    assert.match(loud.stderr, /maxDynamicUniformBuffersPerPipelineLayout artificially reduced/);
    assert.equal(quiet.name, 'wasm', 'a software adapter is not chosen');
  }
});
