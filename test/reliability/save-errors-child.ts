/**
 * Not a test: save-errors.test.ts runs this in a child process whose writes
 * the file system refuses (ulimit -f, a full tmpfs, a read-only mount). It
 * saves a tokenizer (synchronous path) and a model (asynchronous path) into
 * the folder, then reports each error and what the folder holds afterwards
 * (inside a private mount namespace the parent cannot look itself).
 * Without SHARELORA_SAVE_ERRORS it returns at once (node --test runs every .js under test/).
 */
const dir = process.env.SHARELORA_SAVE_ERRORS;
if (dir) {
  const { readdirSync, readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { saveTokenizer } = await import('../../src/data/load-tokenizer.js');
  const { loadModelFromDir } = await import('../../src/models/load.js');
  const { saveModel } = await import('../../src/models/save.js');
  const { FIXTURES, testBackend } = await import('../helpers.js');
  await testBackend();
  const model = loadModelFromDir(join(FIXTURES, 'gpt2', 'model'));
  const ops: Array<[string, () => unknown]> = [['saveTokenizer', () => saveTokenizer(dir)], ['saveModel', () => saveModel(model, dir)]];
  for (const [op, save] of ops) {
    let outcome: Record<string, unknown> = { saved: true };
    try {
      await save();
    } catch (e) {
      const err = e as Error & { file?: string; code?: string };
      outcome = { name: err.name, code: err.code, file: err.file, message: err.message };
    }
    process.stdout.write(`${JSON.stringify({ op, ...outcome })}\n`);
  }
  const files = readdirSync(dir).sort();
  process.stdout.write(`${JSON.stringify({ files, contents: Object.fromEntries(files.map((f) => [f, readFileSync(join(dir, f), 'utf8').slice(0, 20)])) })}\n`);
}
