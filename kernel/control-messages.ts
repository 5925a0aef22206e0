/**
 * What the main thread (control.ts) and the control thread
 * (control-thread.ts) send each other, and the thread's setup, in a leaf:
 * control.ts starts the thread from its file, and neither imports the other.
 */

export interface ControlSetup {
  endpoint: string;
  key: string;
  digest: string;
  session: string;
  /** how long the main thread may stay unresponsive after an interrupt before it is stopped */
  graceMs: number;
  /** SharedState's buffer */
  shared: SharedArrayBuffer;
}

export type ControlNotice =
  | { kind: 'terminated'; frames: string[] }
  | { kind: 'unstoppable'; why: string; frames: string[] }
  | { kind: 'parent-gone' };

export type FromControl =
  | ControlNotice
  | { kind: 'bound' }
  | { kind: 'error'; message: string }
  | { kind: 'ping' }
  | { kind: 'flushed' }
  /** `answered`: the thread already replied (interrupt_request) */
  | { kind: 'request'; frames: Uint8Array[]; answered: boolean };

export type ToControl = { kind: 'send'; frames: Buffer[] } | { kind: 'pong' } | { kind: 'flush' } | { kind: 'close' };
