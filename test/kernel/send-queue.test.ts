/**
 * SendQueue against real zmq sockets: a PUSH socket with a tiny high-water
 * mark makes zeromq leave sends pending, which is when a second send throws
 * EBUSY (the same throw its starvation guard causes on the kernel's sockets
 * after 512 quick sends).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadZmq } from '../../kernel/zmq.js';
import { SendQueue } from '../../kernel/send-queue.js';

const zmq = loadZmq();

async function pair(t: { after(fn: () => void): void }) {
  const push = new zmq.Push({ linger: 0, sendHighWaterMark: 4 });
  const pull = new zmq.Pull({ linger: 0, receiveHighWaterMark: 4 });
  await pull.bind('tcp://127.0.0.1:*');
  push.connect(pull.lastEndpoint!);
  t.after(() => { push.close(); pull.close(); });
  return { push, pull };
}

describe('SendQueue', () => {
  it('delivers a burst in order while zeromq holds sends pending, without throwing', async (t) => {
    const raw = await pair(t);
    // The condition itself: a burst of plain sends hits EBUSY once one is pending. Past 512 quick sends
    // zeromq's starvation guard always leaves one pending; 100 did only when the I/O thread lagged
    // behind, so on a busy machine this line could fail.
    assert.throws(() => { for (let i = 0; i < 2000; i++) void raw.push.send(`raw ${i}`).catch(() => {}); }, /busy writing/);

    const { push, pull } = await pair(t);
    const errors: unknown[] = [];
    const q = new SendQueue(push, (e) => errors.push(e));
    const N = 3000;
    for (let i = 0; i < N; i++) q.push([Buffer.from(`message ${i}`), Buffer.from('second frame')]);
    assert.ok(q.length > 0, 'some messages wait for the pending send');
    for (let i = 0; i < N; i++) {
      const frames = await pull.receive();
      assert.deepEqual(frames.map(String), [`message ${i}`, 'second frame']);
    }
    await q.drained();
    assert.equal(q.length, 0);
    assert.deepEqual(errors, []);
  });

  it('reports a message zeromq refuses or rejects and still sends the next', async (t) => {
    // A mandatory ROUTER rejects a message for a peer it does not know (EHOSTUNREACH).
    const router = new zmq.Router({ linger: 0, mandatory: true, sendTimeout: 0 });
    const dealer = new zmq.Dealer({ linger: 0, routingId: 'known' });
    t.after(() => { router.close(); dealer.close(); });
    await router.bind('tcp://127.0.0.1:*');
    dealer.connect(router.lastEndpoint!);
    await dealer.send('hello');
    await router.receive();
    const errors: { code?: string; message: string }[] = [];
    const q = new SendQueue(router, (e) => errors.push(e as Error));
    q.push([Buffer.from('known'), Buffer.from('first')]);
    q.push([Buffer.from('nobody'), Buffer.from('lost')]);
    q.push([Buffer.from('known'), Symbol('not a frame') as unknown as Buffer]);
    q.push([Buffer.from('known'), Buffer.from('fourth')]);
    assert.equal(String(await dealer.receive()), 'first');
    assert.equal(String(await dealer.receive()), 'fourth');
    assert.deepEqual(errors.map((e) => e.code ?? e.message), ['Cannot convert a Symbol value to a string', 'EHOSTUNREACH']);
  });
});
