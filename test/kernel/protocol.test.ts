/**
 * The kernel over the wire, beyond jupyter_kernel_test: security, rich
 * results, output order, error survival, stop_on_error, imports from an
 * empty folder, and the live training display. One kernel serves all cases.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Signer, type Message } from '../../kernel/wire.js';
import { TestKernel, ofType, streamText } from './client.js';
import { REPO_ROOT } from './env.js';
import { findChromium } from '../../src/notebook/chromium.js';

type Content = Record<string, any>;
const content = (m: Message) => m.content as Content;
const GPT2 = join(REPO_ROOT, 'test', 'fixtures', 'hf-reference', 'gpt2', 'model');

describe('sharelora kernel protocol', { timeout: 180_000 }, () => {
  let k: TestKernel;
  let cwd: string;

  before(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'sharelora-kernel-'));
    k = await TestKernel.start({ cwd });
  });
  after(async () => {
    const code = await k.shutdown();
    rmSync(cwd, { recursive: true, force: true });
    assert.equal(code, 0, `kernel exit code after shutdown_request\n${k.log.join('')}`);
  });

  it('answers kernel_info with status, the real TypeScript version and a backend banner', async () => {
    const { reply } = await k.request('shell', 'kernel_info_request', {});
    const c = content(reply);
    assert.equal(c.status, 'ok');
    assert.equal(c.implementation, 'sharelora');
    assert.equal(c.language_info.name, 'typescript');
    assert.match(c.language_info.version, /^5\.\d+\.\d+$/);
    assert.match(c.banner, /backend cpu on CPU/);
  });

  it('listens only on the address in the connection file', { skip: process.platform !== 'linux' && 'reads /proc/net/tcp' }, () => {
    const rows = readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((r) => r[3] === '0A');
    for (const port of Object.values(k.ports)) {
      const hex = port.toString(16).toUpperCase().padStart(4, '0');
      const bound = rows.filter((r) => r[1]!.endsWith(`:${hex}`)).map((r) => r[1]);
      assert.deepEqual(bound, [`0100007F:${hex}`], `port ${port} is bound as ${bound.join(', ')}`);
    }
  });

  it('drops messages with a wrong signature or a replayed one, and keeps serving', async () => {
    const forged = k.request('shell', 'execute_request', { code: 'console.log("forged")' }, 1500, new Signer('not-the-key', 'sha256'));
    await assert.rejects(forged, /no reply/);
    const msg = k.message('kernel_info_request', {});
    await k.send(msg);
    await k.send(msg); // the same frames again, as a replay
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(k.outputsOf(msg.header.msg_id).filter((m) => content(m).execution_state === 'busy').length, 1);
    const ok = await k.execute('1 + 1');
    assert.equal(content(ok.reply).status, 'ok');
    assert.ok(!k.log.join('').includes('forged'));
    assert.match(k.log.join(''), /bad HMAC signature/);
  });

  it('keeps the preloaded names typed', async () => {
    const bad = await k.execute('const n: number = backend.name');
    assert.equal(content(bad.reply).status, 'error');
    assert.equal(content(bad.reply).ename, 'TSError');
    assert.match(content(bad.reply).evalue, /not assignable to type 'number'/);
  });

  it('shows arquero tables, tensors and figures as rich execute_results', async () => {
    const table = await k.execute('aq.table({ step: [1, 2, 3], loss: [2.5, 1.25, 0.000012] })');
    const t = content(ofType(table.outputs, 'execute_result')[0]!);
    assert.match(t.data['text/html'], /<table class="dataframe sharelora-table"/);
    assert.match(t.data['text/html'], /1\.2e-5/);

    const tensor = await k.execute('tf.tensor([[1, 2], [3, 4]])');
    const tt = content(ofType(tensor.outputs, 'execute_result')[0]!);
    assert.match(tt.data['text/plain'], /^Tensor float32 \[2, 2\]/);
    assert.match(tt.data['text/html'], />4<\/td>/);

    const fig = await k.execute('plot.line({ loss: [3, 2, 1.5] }, { title: "loss" })');
    const results = ofType(fig.outputs, 'execute_result');
    assert.equal(results.length, 1);
    const data = content(results[0]!).data;
    assert.deepEqual(data['application/vnd.plotly.v1+json'].data[0].y, [3, 2, 1.5]);
    if (findChromium()) assert.equal(Buffer.from(data['image/png'], 'base64').subarray(1, 4).toString(), 'PNG');
    // plotly.js travels once per session, inside the first figure's html
    assert.match(data['text/html'], /if \(!window\.Plotly\)/);
    const again = content(ofType((await k.execute('plot.scatter([1, 2])')).outputs, 'execute_result')[0]!).data;
    assert.ok(again['text/html'].length < 20_000, 'a later figure must not resend plotly.js');
  });

  it('keeps output in program order and updates displays in place', async () => {
    const r = await k.execute([
      'console.log("before");',
      'display(plot.bar({ a: 1, b: 2 }));',
      'console.log("after");',
      'const h = display(table([{ x: 1 }]), { displayId: true });',
      'h.update(table([{ x: 2 }]));',
    ].join('\n'));
    const kinds = r.outputs.filter((m) => m.header.msg_type !== 'execute_input').map((m) => m.header.msg_type === 'stream' ? `stream:${content(m).text.trim()}` : m.header.msg_type);
    assert.deepEqual(kinds, ['stream:before', 'display_data', 'stream:after', 'display_data', 'update_display_data']);
    const [shown, updated] = [ofType(r.outputs, 'display_data')[1]!, ofType(r.outputs, 'update_display_data')[0]!];
    assert.equal(content(updated).transient.display_id, content(shown).transient.display_id);
    assert.match(content(updated).data['text/html'], /tabular-nums">2<\/td>/);
  });

  it('survives a throwing callback and an unhandled rejection, reporting both', async () => {
    const first = await k.execute('setTimeout(() => { throw new Error("thrown later") }, 10); Promise.reject(new Error("nobody awaits me")); "started"');
    assert.equal(content(first.reply).status, 'ok');
    // The rejection is noticed while the cell still runs; the timer fires after it finished (runaway.test.ts has more).
    assert.match(streamText(first.outputs, 'stderr'), /Unhandled promise rejection: .*nobody awaits me/);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(k.alive());
    const next = await k.execute('2 + 2');
    assert.equal(content(next.reply).status, 'ok');
    assert.match(streamText(next.outputs, 'stderr'), /Uncaught exception from cell \[\d+\], after that cell had finished:\n.*thrown later/);
  });

  it('aborts requests queued behind a failing cell (stop_on_error), then runs new ones', async () => {
    const failing = k.execute('await new Promise((r) => setTimeout(r, 300)); throw new TypeError("first fails")');
    const queued = k.execute('console.log("must not run")');
    const [f, q] = await Promise.all([failing, queued]);
    assert.equal(content(f.reply).status, 'error');
    const err = ofType(f.outputs, 'error')[0]!;
    assert.equal(content(err).ename, 'TypeError');
    assert.equal(content(err).evalue, 'first fails');
    assert.equal(content(q.reply).status, 'aborted');
    assert.equal(streamText(q.outputs, 'stdout'), '');
    const after = await k.execute('"runs again"');
    assert.equal(content(after.reply).status, 'ok');
  });

  it('imports the notebook folder\'s own modules, which may import the kernel\'s packages', async () => {
    // the folder has no node_modules: arquero and sharelora come from the kernel's own
    writeFileSync(join(cwd, 'helper.ts'), 'import * as aq from "arquero";\nimport { Trainer } from "sharelora";\nexport const rows = () => aq.table({ a: [1, 2] }).numRows() + (typeof Trainer === "function" ? 10 : 0);\n');
    const r = await k.execute('import { rows } from "./helper"; rows()');
    assert.equal(content(ofType(r.outputs, 'execute_result')[0]!).data['text/plain'], '12');
    const missing = await k.execute('import { x } from "no-such-package"');
    assert.equal(content(missing.reply).ename, 'TSError');
    assert.match(content(missing.reply).evalue, /Cannot find module 'no-such-package'/);
  });

  it('evaluates user_expressions and keeps silent requests silent', async () => {
    const r = await k.execute('const answer = 42', { user_expressions: { a: 'answer + 1', bad: 'nope(' } });
    const ue = content(r.reply).user_expressions;
    assert.equal(ue.a.status, 'ok');
    assert.equal(ue.a.data['text/plain'], '43');
    assert.equal(ue.bad.status, 'error');
    const before = content(r.reply).execution_count;
    const silent = await k.execute('console.log("quiet"); 5', { silent: true });
    assert.deepEqual(silent.outputs, []);
    assert.equal(content(silent.reply).execution_count, before);
  });

  it('shows a live progress bar and loss plot while a real Trainer runs', async () => {
    const setup = await k.execute([
      `const model = await loadModel(${JSON.stringify(GPT2)});`,
      "const adapter = injectShareLoRA(model, { r: 4, targets: ['q', 'v'], share: 'A' });",
      'const batch = { inputIds: [[1, 2, 3, 4, 5, 6, 7, 8]], labels: [[1, 2, 3, 4, 5, 6, 7, 8]] };',
      'const trainer = new Trainer(model, adapter, { lr: 1e-3 });',
    ].join('\n'));
    assert.equal(content(setup.reply).status, 'ok', JSON.stringify(content(setup.reply)));
    const fit = await k.execute('await trainer.fit({ train: [batch, batch, batch, batch], epochs: 2 })');
    assert.equal(content(fit.reply).status, 'ok', JSON.stringify(content(fit.reply)));
    const shown = ofType(fit.outputs, 'display_data');
    const bar = shown.find((m) => /sharelora-progress/.test(content(m).data['text/html'] ?? ''))!;
    const barId = content(bar).transient.display_id;
    const barUpdates = ofType(fit.outputs, 'update_display_data').filter((m) => content(m).transient.display_id === barId);
    assert.ok(barUpdates.length >= 2);
    const final = content(barUpdates[barUpdates.length - 1]!).data['text/plain'];
    assert.match(final, /step 8\/8 · loss \d+(\.\d+)? · [\d.]+k? tok\/s · .* · done$/);
    const plots = [...shown, ...ofType(fit.outputs, 'update_display_data')].filter((m) => content(m).data['application/vnd.plotly.v1+json']);
    assert.ok(plots.length >= 1, 'a loss plot is shown');
    const history = content(ofType(fit.outputs, 'execute_result')[0]!).data['text/html'];
    assert.match(history, /8 rows × 9 columns/);
  });
});
