/** Paths shared by the data tests; compiled to dist/test/data, three levels below the repo root. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const FIXTURES = join(REPO, 'test', 'data', 'fixtures');
export const GLUE_DIR = join(FIXTURES, 'glue');
export const HF_REFERENCE = join(REPO, 'test', 'fixtures', 'hf-reference');

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `sharelora-${prefix}-`));
}
