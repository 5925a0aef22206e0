/** `node dist/src/train/queue/worker-main.js --queue …`: the worker without the sharelora CLI. */
import { workerMain } from './worker-cli.js';

workerMain(process.argv.slice(2)).then((code) => process.exit(code), (e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(2);
});
