/**
 * Kernel diagnostics go to the process's real stderr, which Jupyter shows in
 * its server log; process.stderr.write itself is redirected into cells.
 */
const write = process.stderr.write.bind(process.stderr);

export function log(message: string): void {
  write(`[sharelora kernel] ${message}\n`);
}
