/**
 * HTTP for the Hub resolver with deadlines: a server that accepts the
 * connection and then says nothing, or stops in the middle of a body, would
 * otherwise hold the caller for undici's 300 s defaults, or forever through
 * a proxy that trickles.
 */
import { DataError } from '../util/errors.js';

export interface HttpLimits {
  /** Until the answer's headers arrive. */
  connectTimeoutMs: number;
  /** Longest silence between two pieces of a body. */
  idleTimeoutMs: number;
}

/** The Hub cannot be reached or stopped answering; the resolver may fall back to the cache. */
export class NetworkError extends DataError {}

class Timeout extends Error {}

/** A request whose headers must come within `connectTimeoutMs`; the returned `body` enforces `idleTimeoutMs`. */
export async function request(url: string, init: RequestInit, limits: HttpLimits): Promise<{ res: Response; body: () => AsyncGenerator<Uint8Array>; close: () => void }> {
  const abort = new AbortController();
  let timer = setTimeout(() => abort.abort(new Timeout()), limits.connectTimeoutMs);
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: abort.signal });
  } catch (e) {
    clearTimeout(timer);
    if (e instanceof Timeout) throw new NetworkError(url, `no answer within ${limits.connectTimeoutMs} ms (connectTimeoutMs)`);
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new NetworkError(url, `cannot connect (${cause?.code ?? cause?.message ?? (e as Error).message})`);
  }
  clearTimeout(timer);
  async function* body(): AsyncGenerator<Uint8Array> {
    if (!res.body) return;
    let received = 0;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => abort.abort(new Timeout()), limits.idleTimeoutMs);
    };
    arm();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        received += chunk.byteLength;
        arm();
        yield chunk;
      }
    } catch (e) {
      if (e instanceof Timeout || abort.signal.reason instanceof Timeout) throw new NetworkError(url, `download stalled: nothing for ${limits.idleTimeoutMs} ms after ${received} bytes (idleTimeoutMs)`);
      throw new NetworkError(url, `download interrupted after ${received} bytes (${(e as Error).message})`);
    } finally {
      clearTimeout(timer);
      // a consumer that stops early (a size limit) must not leave the socket open
      if (!abort.signal.aborted) abort.abort();
    }
  }
  // an answer whose body is not wanted (HEAD, an error status) must not hold its socket
  const close = () => {
    clearTimeout(timer);
    if (!abort.signal.aborted) abort.abort();
  };
  return { res, body, close };
}

/** A byte count from Content-Length / X-Linked-Size; a value that is not one is an error, not "unknown". */
export function byteCount(raw: string | null, header: string, url: string): number | undefined {
  if (raw === null) return undefined;
  if (!/^\d{1,16}$/.test(raw.trim())) throw new DataError(url, `${header} is ${JSON.stringify(raw.slice(0, 40))}; expected a byte count`);
  return Number(raw.trim());
}
