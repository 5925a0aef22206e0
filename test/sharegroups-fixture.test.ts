/**
 * Share groups in between the two ends, against PyTorch: PEFT modules tied
 * within groups of layers by scripts/gen_sharegroups_fixture.py (run where
 * torch + transformers + peft exist). Each folder is PEFT's own save, with
 * no record of the tie, so the groups must be found from the copies; the
 * logits, every gradient (summed over a group by autograd) and the AdamW
 * curve must match. Skipped, saying so, until the fixture is generated.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAdapter } from '../src/adapters/peft.js';
import type { Share } from '../src/adapters/config.js';
import { readSafetensors } from '../src/models/safetensors.js';
import { loadModelFromDir } from '../src/models/load.js';
import type { Model } from '../src/models/types.js';
import { FIXTURES, testBackend } from './helpers.js';
import { checkAgainstFixture } from './fixture-check.js';

const DIR = join(FIXTURES, 'sharegroups');
const MANIFEST = join(DIR, 'manifest.json');
const missing = existsSync(MANIFEST) ? false
  : `no fixture at test/fixtures/hf-reference/sharegroups yet: it is made on a machine with torch, transformers and peft by \`python3 scripts/gen_sharegroups_fixture.py test/fixtures/hf-reference 1234\``;

interface Manifest { families: Record<string, { cases: Record<string, { share: Share; groups: number[][]; trainable_params: number }> }> }

describe('share groups between LoRA and ShareLoRA match HF + PEFT', { skip: missing }, () => {
  const manifest = missing ? { families: {} } : JSON.parse(readFileSync(MANIFEST, 'utf8')) as Manifest;
  let tol = { logits: 1e-5, grads: 1e-4 };
  before(async () => {
    const backend = await testBackend();
    if (backend !== 'cpu' && backend !== 'wasm') tol = { logits: 1e-3, grads: 1e-3 };
  });
  for (const [family, { cases }] of Object.entries(manifest.families)) {
    describe(family, () => {
      let model: Model;
      let exp: ReturnType<typeof readSafetensors>['tensors'];
      before(() => {
        model = loadModelFromDir(join(FIXTURES, family, 'model'));
        exp = readSafetensors(join(DIR, family, 'expected.safetensors')).tensors;
      });
      for (const [name, info] of Object.entries(cases)) {
        it(`${name}: groups ${JSON.stringify(info.groups)} found from PEFT's copies; logits, gradients, AdamW curve`, async () => {
          const found = await loadAdapter(model, join(DIR, family, name));
          try {
            assert.equal(found.share, info.share);
            assert.deepEqual(found.shareGroups, info.groups);
            assert.equal(found.trainableParameterCount(), info.trainable_params);
            // the 10-step curve for one share per family keeps the file's time modest; gradients are checked for all
            await checkAgainstFixture(model, found, exp, family, name, { tol, curve: info.share === 'A' });
          } finally {
            found.unload();
          }
          const stated = await loadAdapter(model, join(DIR, family, name), { share: info.share, shareGroups: info.groups });
          try {
            await checkAgainstFixture(model, stated, exp, family, name, { tol });
          } finally {
            stated.unload();
          }
        });
      }
    });
  }
});
