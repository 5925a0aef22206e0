/**
 * One execute_request and everything it prints. Outputs queue in the order
 * the code produced them; a rich display that is still rendering (a figure's
 * PNG) holds later output back instead of being overtaken by it. Adjacent
 * stream writes merge into one message. A cell that was interrupted and left
 * running detached is muted, so nothing it prints lands in later cells.
 */
import type { DisplayOutput } from '../src/notebook/mime.js';
import type { Message } from './wire.js';

export type Publish = (parent: Message, msgType: string, content: Record<string, unknown>) => void;

interface Outgoing { type: string; content: Record<string, unknown> }
type Item =
  | { kind: 'stream'; name: 'stdout' | 'stderr'; text: string; dropped: number }
  | { kind: 'messages'; pending: Promise<Outgoing[]> };

export type CellState = 'running' | 'done' | 'detached';

/**
 * Output that piles up between two turns of the event loop is cut here: code
 * printing in a loop that never yields would otherwise build a message of
 * gigabytes before it is stopped.
 */
const MAX_PENDING_STREAM_CHARS = 1 << 20;

export class Cell {
  state: CellState = 'running';
  private readonly queue: Item[] = [];
  private pumping?: Promise<void>;
  private scheduled = false;

  /**
   * @param muted silent requests publish nothing (protocol: silent=true).
   */
  constructor(readonly request: Message, readonly executionCount: number, private readonly publish: Publish, readonly muted = false) {}

  /** Output queued before a cell was detached still goes out; nothing new is accepted. */
  private get dropping(): boolean {
    return this.muted || this.state === 'detached';
  }

  stream(name: 'stdout' | 'stderr', text: string): void {
    if (this.dropping || text === '') return;
    const last = this.queue[this.queue.length - 1];
    if (last?.kind === 'stream' && last.name === name) {
      if (last.text.length < MAX_PENDING_STREAM_CHARS) last.text += text;
      else last.dropped += text.length;
    } else {
      this.queue.push({ kind: 'stream', name, text, dropped: 0 });
    }
    this.schedule();
  }

  /** display() from src/notebook: all outputs but the last are new; the last may update a display id. */
  display(outputs: DisplayOutput[] | Promise<DisplayOutput[]>, target: { displayId?: string; update?: boolean }): void {
    if (this.dropping) return;
    const pending = Promise.resolve(outputs).then((outs) => outs.map((o, i) => {
      const last = i === outs.length - 1;
      const content: Record<string, unknown> = { data: o.data, metadata: o.metadata, transient: last && target.displayId ? { display_id: target.displayId } : {} };
      return { type: last && target.update ? 'update_display_data' : 'display_data', content };
    }));
    this.enqueue(pending);
  }

  /** tslab's own display API hands over a finished message body. */
  rawDisplay(content: Record<string, unknown>, update: boolean): void {
    if (this.dropping) return;
    this.enqueue(Promise.resolve([{ type: update ? 'update_display_data' : 'display_data', content }]));
  }

  /** The last expression's value; any plotly.js loader goes first as display_data. */
  result(outputs: Promise<DisplayOutput[]>): void {
    if (this.dropping) return;
    this.enqueue(outputs.then((outs) => outs.map((o, i) => (i === outs.length - 1
      ? { type: 'execute_result', content: { execution_count: this.executionCount, data: o.data, metadata: o.metadata } }
      : { type: 'display_data', content: { data: o.data, metadata: o.metadata, transient: {} } }))));
  }

  clear(wait: boolean): void {
    if (this.dropping) return;
    this.enqueue(Promise.resolve([{ type: 'clear_output', content: { wait } }]));
  }

  /** Sent outside the queue: the error belongs to the reply, even for a detached cell. */
  error(content: Record<string, unknown>): void {
    if (!this.muted) this.publish(this.request, 'error', content);
  }

  private enqueue(pending: Promise<Outgoing[]>): void {
    // An unobserved rejection here would be an unhandledRejection blamed on the user's cell.
    pending.catch(() => {});
    this.queue.push({ kind: 'messages', pending });
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.pumping) return;
    this.scheduled = true;
    // setImmediate, not a microtask: writes from the same stretch of code coalesce.
    setImmediate(() => {
      this.scheduled = false;
      void this.pump();
    });
  }

  private pump(): Promise<void> {
    this.pumping ??= (async () => {
      while (this.queue.length) {
        const item = this.queue[0]!;
        if (item.kind === 'stream') {
          this.queue.shift();
          const cut = item.dropped ? `\n[… ${item.dropped} more characters of output, printed faster than they could be sent, were dropped]\n` : '';
          if (!this.muted) this.publish(this.request, 'stream', { name: item.name, text: item.text + cut });
          continue;
        }
        let msgs: Outgoing[];
        try {
          msgs = await item.pending;
        } catch (e) {
          msgs = [{ type: 'stream', content: { name: 'stderr', text: `display failed: ${(e as Error)?.stack ?? e}\n` } }];
        }
        this.queue.shift();
        if (!this.muted) for (const m of msgs) this.publish(this.request, m.type, m.content);
      }
    })().finally(() => {
      this.pumping = undefined;
      if (this.queue.length) this.schedule();
    });
    return this.pumping;
  }

  /** Resolves when everything queued so far has been published. */
  async drain(): Promise<void> {
    while (this.queue.length || this.pumping) await this.pump();
  }
}
