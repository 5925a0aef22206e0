/**
 * The SpamAssassin rows exported for the GPU machine (scripts/export-spam-rows.ts,
 * read through SHARELORA_SPAM_ROWS) give the package's splits, and the same
 * token ids for every e-mail up to 256 tokens.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const dist = fileURLToPath(new URL('../..', import.meta.url));
const probe = `
  const { datasets, loadTokenizer } = await import(${JSON.stringify(join(dist, 'src/index.js'))});
  const tok = loadTokenizer('sharelora-gpt2-mini');
  const out = {};
  for (const split of ['train', 'validation', 'test']) {
    const d = await datasets.spamAssassin({ split });
    const text = d.table.array('text');
    out[split] = { ids: Array.from(d.table.array('id')), tokens: Array.from(text, (t) => tok.encode(String(t)).slice(0, 256).join(',')) };
  }
  console.log(JSON.stringify(out));`;
const run = (env: NodeJS.ProcessEnv) => JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', probe], { env: { ...process.env, ...env }, maxBuffer: 1 << 28, encoding: 'utf8' }).trim().split('\n').at(-1)!);

describe('SpamAssassin rows exported for the GPU machine', () => {
  it('same splits and the same first 256 tokens as the npm package', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'spam-rows-')), 'rows.json');
    execFileSync(process.execPath, [join(dist, 'scripts/export-spam-rows.js'), file]);
    const fromPackage = run({ SHARELORA_SPAM_ROWS: '' });
    const fromExport = run({ SHARELORA_SPAM_ROWS: file });
    for (const split of ['train', 'validation', 'test']) {
      assert.deepEqual(fromExport[split].ids, fromPackage[split].ids, `${split}: ids`);
      assert.ok(fromPackage[split].ids.length > 500);
      const differ = fromPackage[split].tokens.filter((t: string, i: number) => t !== fromExport[split].tokens[i]).length;
      assert.equal(differ, 0, `${split}: ${differ} e-mails tokenise differently`);
    }
  });
});
