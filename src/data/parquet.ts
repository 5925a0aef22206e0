/**
 * Parquet files are read through the guarded reader, then decoded in a
 * worker thread (parquet-worker.ts) under a time and memory limit: hyparquet
 * trusts the file's page headers, and a few changed bytes can make it loop
 * forever, allocate without bound or reject a promise nobody awaits. Such a
 * file costs the worker, which is replaced; the process goes on, and the
 * caller gets a DataError naming the file.
 */
import { Worker } from 'node:worker_threads';
import { DataError } from '../util/errors.js';
import type { ParquetReply } from './parquet-worker.js';
import { readDataBytes } from '../util/read-data.js';

/** Decoded rows take several times the file's size; past this the rows would not fit in memory anyway. */
export const MAX_PARQUET_BYTES = 1 << 30;
/** A worker that has been idle this long is ended, giving its memory back. */
const IDLE_MS = 10_000;

export interface ParquetOptions {
  /** Give up decoding after this long; default 30 s plus 1 s per MB of file. */
  timeoutMs?: number;
}

export interface ParquetContents {
  columns: string[];
  rows: unknown[][];
  keyValue: Array<{ key: string; value?: string }>;
}

interface Decoder { worker: Worker; heapMb: number; reply?: (r: ParquetReply) => void; idle?: NodeJS.Timeout }

// Starting a worker costs 50-300 ms, so one is kept between files and replaced only when it fails.
let decoder: Decoder | undefined;
let queue: Promise<unknown> = Promise.resolve();

const heapFor = (mb: number) => Math.min(8192, 512 * 2 ** Math.max(0, Math.ceil(Math.log2((512 + 32 * mb) / 512))));

function retire(d: Decoder, message: string): void {
  if (decoder === d) decoder = undefined;
  clearTimeout(d.idle);
  const reply = d.reply;
  d.reply = undefined;
  reply?.({ error: { stage: 'data', message } });
  void d.worker.terminate().catch(() => {});
}

function start(heapMb: number): Decoder {
  // execArgv: [] because some of the parent's flags (--input-type, say) make a worker refuse to start; decoding needs none
  const worker = new Worker(new URL('./parquet-worker.js', import.meta.url), { execArgv: [], resourceLimits: { maxOldGenerationSizeMb: heapMb } });
  const d: Decoder = { worker, heapMb };
  worker.on('message', (r: ParquetReply) => {
    const reply = d.reply;
    d.reply = undefined;
    reply?.(r);
  });
  // ERR_WORKER_OUT_OF_MEMORY, or anything the decoder threw outside its promise
  worker.on('error', (e) => retire(d, e.message));
  worker.on('exit', (code) => retire(d, `the decoder stopped (exit code ${code})`));
  return d;
}

async function decodeOnce(buffer: ArrayBuffer, timeoutMs: number, heapMb: number): Promise<ParquetReply> {
  if (decoder && decoder.heapMb < heapMb) retire(decoder, 'replaced by a larger decoder');
  const d = (decoder ??= start(heapMb));
  clearTimeout(d.idle);
  const reply = await new Promise<ParquetReply>((resolve) => {
    const timer = setTimeout(() => retire(d, `decoding did not finish within ${Math.round(timeoutMs)} ms`), timeoutMs);
    d.reply = (r) => {
      clearTimeout(timer);
      resolve(r);
    };
    d.worker.postMessage(buffer, [buffer]);
  });
  if (decoder === d) {
    d.idle = setTimeout(() => retire(d, 'idle'), IDLE_MS);
    d.idle.unref();
    // listeners and messages ref the worker again: an idle decoder must not keep the process alive
    d.worker.unref();
  }
  return reply;
}

export async function readParquet(file: string, opts: ParquetOptions = {}): Promise<ParquetContents> {
  const bytes = readDataBytes(file, 'Parquet file', MAX_PARQUET_BYTES);
  const mb = bytes.byteLength / 1e6;
  const timeoutMs = opts.timeoutMs ?? 30_000 + 1000 * mb;
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) throw new RangeError(`decodeTimeoutMs must be a positive number of milliseconds, got ${opts.timeoutMs}`);
  // a copy the worker can own (a small Buffer shares Node's allocation pool)
  const buffer = new Uint8Array(bytes).buffer;
  const run = queue.then(() => decodeOnce(buffer, timeoutMs, heapFor(mb)));
  queue = run.catch(() => {});
  const reply = await run;
  if (reply.error) {
    throw new DataError(file, reply.error.stage === 'metadata'
      ? `not a Parquet file, or its footer is damaged (${reply.error.message})`
      : `corrupt Parquet data (${reply.error.message}); expected a file written by Dataset.to_parquet or pyarrow`);
  }
  return { columns: reply.columns!, rows: reply.rows!, keyValue: reply.keyValue! };
}
