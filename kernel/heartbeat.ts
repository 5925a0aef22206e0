/**
 * Heartbeat echo in a worker thread, so a cell busy in synchronous tfjs math
 * for minutes does not look like a dead kernel to clients that ping it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadZmq } from './zmq.js';

const { endpoint } = workerData as { endpoint: string };
const zmq = loadZmq();
const sock = new zmq.Reply({ linger: 0 });

parentPort?.on('message', (m) => {
  if (m === 'close') sock.close();
});

try {
  await sock.bind(endpoint);
  parentPort?.postMessage('bound');
  for await (const frames of sock) await sock.send(frames);
} catch (e) {
  if (!sock.closed) parentPort?.postMessage(`error: ${(e as Error).message}`);
}
// The socket is closed: let the thread end on its own (terminating it mid-zmq aborts the process).
parentPort?.close();
