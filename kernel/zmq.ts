/**
 * zeromq comes with tslab; resolving it through tslab keeps working however
 * npm lays out node_modules.
 */
import { createRequire } from 'node:module';
import type * as Zmq from 'zeromq';

const require = createRequire(import.meta.url);

export function loadZmq(): typeof Zmq {
  const fromTslab = createRequire(require.resolve('tslab/package.json'));
  return fromTslab('zeromq') as typeof Zmq;
}
