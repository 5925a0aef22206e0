/**
 * The notebooks' prose against their saved outputs: every number written in
 * a markdown cell must be one the notebook's outputs (or its code) show, at
 * the precision it is written with, or be listed with a reason in
 * notebooks/claims-allowlist.json (claims.ts says what is exempt and why).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../kernel/env.js';
import { checkNotebook, claimsIn, type AllowEntry } from './claims.js';

const NOTEBOOKS = join(REPO_ROOT, 'notebooks');
const ALLOWLIST = join(NOTEBOOKS, 'claims-allowlist.json');

describe('numbers in the notebooks\' text come from their outputs', () => {
  const allow = JSON.parse(readFileSync(ALLOWLIST, 'utf8')) as Record<string, AllowEntry[]>;
  const names = readdirSync(NOTEBOOKS).filter((f) => f.endsWith('.ipynb')).sort();

  it('the allowlist names only existing notebooks, and every entry gives a reason', () => {
    for (const [nb, entries] of Object.entries(allow)) {
      assert.ok(names.includes(nb), `${nb} in claims-allowlist.json is not a notebook`);
      for (const e of entries) assert.ok(typeof e.text === 'string' && e.text && typeof e.reason === 'string' && e.reason.length > 20, `${nb}: ${JSON.stringify(e)} needs text and a reason`);
    }
  });

  for (const name of names) {
    it(name, () => {
      const nb = JSON.parse(readFileSync(join(NOTEBOOKS, name), 'utf8')) as { cells: Parameters<typeof checkNotebook>[0] };
      const r = checkNotebook(nb.cells, allow[name] ?? []);
      const lines = r.unsupported.map((c) => `  cell ${c.cell}: "${c.text}" in …${c.context}…`);
      assert.deepEqual(lines, [], `${lines.length} of ${r.checked} numbers in the text are not in the saved outputs:\n${lines.join('\n')}`);
      assert.deepEqual(r.unused.map((a) => a.text), [], 'allowlist entries that no longer occur in the text (remove them)');
    });
  }
});

describe('the claim checker', () => {
  const cell = (md: string) => ({ cell_type: 'markdown', source: md });
  const out = (text: string) => ({ cell_type: 'code', source: '', outputs: [{ output_type: 'stream', text }] });

  it('matches a number at its written precision, in magnitude', () => {
    const cells = [out('loss 0.4801 acc -82% share 0.352 params 6,918,912'), cell('loss 0.480, 0.48, −0.48; 82% fewer; 35% spam; 6.9 M parameters; 49,664')];
    const r = checkNotebook(cells);
    assert.deepEqual(r.unsupported.map((c) => c.text), ['49,664']);
    assert.equal(r.checked, 7);
    assert.deepEqual(checkNotebook([out('0.4801'), cell('0.47 and 0.4802')]).unsupported.map((c) => c.text), ['0.47', '0.4802']);
  });

  it('exempts code, links, headings, list numbers, ids, dates, years, sections, names glued to letters', () => {
    const md = '# 01 · Title\n## 2. Part\n1. first\n`lr = 0.9` [arXiv 2406.10785](https://arxiv.org/abs/2406.10785) 2002-10-10, 2003, §3, GPT-2, LLaMA-7B, fp32, α = 2r, 02-classifier\n```\nx = 5\n```';
    assert.deepEqual(claimsIn(md, 0).map((c) => c.text), []);
  });

  it('takes numbers from the code, and from the allowlist only where its phrase occurs', () => {
    const code = { cell_type: 'code', source: 'const lr = 5e-3, N = 320;', outputs: [] };
    assert.deepEqual(checkNotebook([code, cell('lr 5e-3 on 320 mails, 44%–96% fewer')], [{ text: '44%–96%', reason: 'quoted from the abstract' }]).unsupported, []);
    const r = checkNotebook([cell('44% fewer')], [{ text: '44%–96%', reason: 'quoted from the abstract' }]);
    assert.deepEqual(r.unsupported.map((c) => c.text), ['44%']);
    assert.deepEqual(r.unused.map((a) => a.text), ['44%–96%']);
  });
});
