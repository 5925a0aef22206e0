/**
 * Thousands of short cells with output, several queued at a time as "Run
 * All" sends them: every one must get its reply and its own outputs.
 * zeromq 6 refuses a send while one is pending and delays one on purpose
 * after 512 sends; that refusal used to wedge the kernel after ~100 cells.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../../kernel/wire.js';
import { TestKernel, ofType, streamText } from './client.js';
import { tempDir } from './env.js';

type Content = Record<string, any>;
const content = (m: Message) => m.content as Content;

const CELLS = 2000;
/** requests in flight at once */
const LANES = 16;

test(`answers ${CELLS} cells that print, display and return a value, each with its own outputs`, { timeout: 300_000 }, async (t) => {
  const k = await TestKernel.start({ cwd: tempDir(t, 'sharelora-soak-') });
  t.after(() => k.shutdown());
  // The same source every time: tslab type-checks a repeated cell almost for free, so this measures the kernel.
  const first = await k.execute('let n = 0');
  const base = content(first.reply).execution_count as number;
  const code = 'n++; console.log(`line ${n}`); display.html(`<i>${n}</i>`); n';

  const counts = new Map<number, number>();
  let sent = 0;
  const started = Date.now();
  const lane = async () => {
    while (sent < CELLS) {
      sent++;
      const { reply, outputs } = await k.execute(code, {}, 30_000);
      assert.equal(content(reply).status, 'ok', JSON.stringify(content(reply)));
      const n = Number(content(ofType(outputs, 'execute_result')[0]!).data['text/plain']);
      assert.equal(streamText(outputs, 'stdout'), `line ${n}\n`);
      assert.equal(content(ofType(outputs, 'display_data')[0]!).data['text/html'], `<i>${n}</i>`);
      counts.set(n, content(reply).execution_count);
    }
  };
  await Promise.all(Array.from({ length: LANES }, lane));
  const seconds = (Date.now() - started) / 1000;
  t.diagnostic(`${CELLS} cells in ${seconds.toFixed(1)} s: ${(CELLS / seconds).toFixed(0)} cells/s`);

  // Each cell ran once, in arrival order.
  assert.equal(counts.size, CELLS);
  for (let n = 1; n <= CELLS; n++) assert.equal(counts.get(n), base + n, `cell ${n}`);
  assert.doesNotMatch(k.log.join(''), /failed|busy/i);
});
