/**
 * Runs in a worker thread started by parquet.ts: hyparquet decodes files
 * here, so that a corrupt file which makes the decoder loop forever, exhaust
 * memory or reject a promise nobody awaits ends this thread, not the process.
 */
import { parentPort } from 'node:worker_threads';
import { parquetMetadata, parquetRead, parquetSchema, type FileMetaData } from 'hyparquet';

export interface ParquetReply {
  error?: { stage: 'metadata' | 'data'; message: string };
  columns?: string[];
  rows?: unknown[][];
  keyValue?: Array<{ key: string; value?: string }>;
}

// hyparquet 1.33 can leave a column's promise unobserved when the schema and the row groups disagree
let orphan: unknown;
process.on('unhandledRejection', (e) => {
  orphan ??= e;
});

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

async function decode(buffer: ArrayBuffer): Promise<ParquetReply> {
  let metadata: FileMetaData;
  let columns: string[];
  try {
    metadata = parquetMetadata(buffer);
    columns = parquetSchema(metadata).children.map((c) => c.element.name);
  } catch (e) {
    return { error: { stage: 'metadata', message: message(e) } };
  }
  try {
    const rows = await new Promise<unknown[][]>((resolve, reject) => {
      parquetRead({ file: buffer, metadata, columns, rowFormat: 'array', onComplete: (r) => resolve(r as unknown[][]) }).catch(reject);
    });
    // an orphaned rejection surfaces on the next turn of the event loop
    await new Promise((r) => setImmediate(r));
    if (orphan !== undefined) throw orphan;
    return { columns, rows, keyValue: metadata.key_value_metadata ?? [] };
  } catch (e) {
    return { error: { stage: 'data', message: message(e) } };
  }
}

// one file at a time: parquet.ts waits for each reply before sending the next
parentPort!.on('message', async (buffer: ArrayBuffer) => {
  orphan = undefined;
  parentPort!.postMessage(await decode(buffer));
});
