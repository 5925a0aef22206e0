/**
 * Kernel entry point: `node dist/kernel/main.js <connection_file>`, as
 * written into kernel.json by install.ts. The working directory is the
 * notebook's folder (Jupyter starts kernels there).
 */
import { readConnectionFile } from './connection.js';
import { flags } from '../src/backend/flags.js';
import { KernelSockets } from './sockets.js';
import { Kernel } from './kernel.js';
import { interruptGraceMs, startSession } from './session.js';
import { SharedState } from './shared-state.js';
import { realExit } from './exit-guard.js';
import { exposeAsyncStackReset } from './stop-stuck.js';
import { log } from './log.js';

export { REPO_ROOT } from './session.js';

async function main(): Promise<void> {
  const connectionFile = process.argv[2];
  if (!connectionFile) {
    throw new Error('usage: node dist/kernel/main.js <connection_file> (Jupyter fills this in from kernel.json)');
  }
  const info = readConnectionFile(connectionFile);
  exposeAsyncStackReset();
  const graceMs = interruptGraceMs();
  const shared = new SharedState();
  const sockets = await KernelSockets.bind(info, graceMs, shared);
  const { runtime, interrupts, identity, notes, late, guard } = await startSession(process.cwd(), flags.backend, { shared, graceMs });
  const kernel = new Kernel(sockets, runtime, interrupts, identity, notes, late, guard);
  sockets.onNotice = (n) => {
    if (n.kind === 'terminated') kernel.stuckCodeStopped(n.frames);
    else if (n.kind === 'unstoppable') kernel.stuckCodeUnstoppable(n.why);
    else if (n.kind === 'parent-gone') {
      log('Jupyter (the kernel\'s parent process) is gone: exiting');
      void kernel.exit(0);
    }
  };
  kernel.start();
  process.on('SIGTERM', () => void kernel.exit(0));
}

main().catch((e) => {
  log(`failed to start: ${(e as Error).stack ?? e}`);
  realExit(1);
});
