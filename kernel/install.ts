/**
 * `npm run kernel:install [-- --prefix P]`: register the sharelora kernelspec.
 * Importable too: start.ts installs before opening Jupyter.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KERNEL_NAME, kernelDir, kernelJson, writeKernelSpec } from './kernelspec.js';

const here = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(here, '..', '..');

export interface InstallOptions {
  prefix?: string;
}

export function parseInstallArgs(args: string[]): InstallOptions & { rest: string[] } {
  const out: InstallOptions & { rest: string[] } = { rest: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--prefix' || a.startsWith('--prefix=')) {
      const v = a.includes('=') ? a.slice('--prefix='.length) : args[++i];
      if (!v) throw new Error('--prefix needs a folder, e.g. --prefix /usr/local');
      out.prefix = resolve(v);
    } else if (a === '--user') {
      // the default; accepted for symmetry with `jupyter kernelspec install --user`
    } else {
      out.rest.push(a);
    }
  }
  return out;
}

/** @returns the kernel.json path written */
export function install(opts: InstallOptions = {}): string {
  const entry = join(here, 'main.js');
  if (!existsSync(entry)) throw new Error(`the kernel is not built (${entry} is missing); run \`npm run build\` first`);
  const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  return writeKernelSpec(kernelDir({ prefix: opts.prefix }), kernelJson(entry, REPO_ROOT, version));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const { prefix, rest } = parseInstallArgs(process.argv.slice(2));
    if (rest.length) throw new Error(`unknown argument ${rest[0]}; usage: node dist/kernel/install.js [--user | --prefix DIR]`);
    const file = install({ prefix });
    console.log(`installed the "${KERNEL_NAME}" Jupyter kernel: ${file}`);
  } catch (e) {
    console.error(`kernel install failed: ${(e as Error).message}`);
    process.exit(1);
  }
}
