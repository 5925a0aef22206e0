/**
 * The outgoing queue of one zmq socket.
 *
 * zeromq 6 allows one pending send per socket and throws EBUSY synchronously
 * at a second. It also delays a send on purpose after 512 sends that did not
 * let the event loop turn (starvation guard), so a few hundred short cells
 * used to hit that throw, which escaped into the execute queue and wedged the
 * kernel. Here a message zmq refuses as busy waits, with everything behind
 * it, until the pending send completes; one that fails for any other reason
 * is reported and dropped, and the next still goes.
 *
 * Retries run on a timer as well as on the pending send's completion: a
 * terminated cell (stop-stuck.ts) drops every queued promise callback, and
 * the queue must not depend on one of those to move again.
 */
import type * as Zmq from 'zeromq';

type Frames = Buffer[];
type SendSocket = Pick<Zmq.Publisher, 'send' | 'closed'>;

const RETRY_MS = 2;

export class SendQueue {
  private readonly waiting: Frames[] = [];
  private retry?: NodeJS.Timeout;
  private readonly emptied: (() => void)[] = [];

  constructor(private readonly sock: SendSocket, private readonly report: (e: unknown) => void) {}

  get length(): number {
    return this.waiting.length;
  }

  /** Queues `frames` behind earlier messages; when none wait, zmq gets them before this returns. */
  push(frames: Frames): void {
    this.waiting.push(frames);
    if (this.waiting.length === 1) this.pump();
  }

  /** Resolves once every message pushed so far has been handed to zmq (or dropped with the socket). */
  drained(): Promise<void> {
    if (this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptied.push(resolve));
  }

  private pump(): void {
    while (this.waiting.length) {
      if (this.sock.closed) {
        this.waiting.length = 0;
        break;
      }
      let sent: Promise<void>;
      try {
        sent = this.sock.send(this.waiting[0]!);
      } catch (e) {
        if ((e as { code?: string })?.code === 'EBUSY') {
          this.retryLater();
          return;
        }
        this.waiting.shift();
        this.report(e);
        continue;
      }
      this.waiting.shift();
      sent.then(() => this.waiting.length && this.pump(), (e) => {
        this.report(e);
        if (this.waiting.length) this.pump();
      });
    }
    for (const resolve of this.emptied.splice(0)) resolve();
  }

  private retryLater(): void {
    if (this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.pump();
    }, RETRY_MS);
  }
}
