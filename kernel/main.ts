/**
 * Kernel entry point: `node dist/kernel/main.js <connection_file>`, as
 * written into kernel.json by install.ts. The working directory is the
 * notebook's folder (Jupyter starts kernels there).
 */
import { readConnectionFile } from './connection.js';
import { KernelSockets } from './sockets.js';
import { Kernel } from './kernel.js';
import { startSession } from './session.js';
import { log } from './log.js';

export { REPO_ROOT } from './session.js';

async function main(): Promise<void> {
  const connectionFile = process.argv[2];
  if (!connectionFile) {
    throw new Error('usage: node dist/kernel/main.js <connection_file> (Jupyter fills this in from kernel.json)');
  }
  const info = readConnectionFile(connectionFile);
  const sockets = await KernelSockets.bind(info);
  const { runtime, interrupts, identity, notes, guard } = await startSession(process.cwd(), process.env.SHARELORA_BACKEND || 'auto');
  const kernel = new Kernel(sockets, runtime, interrupts, identity, notes, guard);
  kernel.start();
  process.on('SIGTERM', () => {
    runtime.close();
    void sockets.close().finally(() => process.exit(0));
  });
}

main().catch((e) => {
  log(`failed to start: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
