/**
 * Not a test: special-files.test.ts runs this as a child process with a
 * deadline, because a reader that opens a FIFO blocks in open() or read(),
 * where neither a test timeout nor SIGINT can reach it. It tries every reader
 * on the special files the parent made and prints one JSON line per reader.
 * Without SHARELORA_SPECIAL_FILES it returns at once (node --test runs every .js under test/).
 */
const dir = process.env.SHARELORA_SPECIAL_FILES;
if (dir) {
  const { join } = await import('node:path');
  const data = await import('../../src/data/index.js');
  const { loadModelFromDir } = await import('../../src/models/load.js');
  const cases: Array<[string, () => unknown]> = [
    ['tokenizer.json FIFO', () => data.loadTokenizer(join(dir, 'tok-fifo'))],
    ['tokenizer.json -> /dev/zero', () => data.loadTokenizer(join(dir, 'tok-zero'))],
    ['tokenizer.json folder', () => data.loadTokenizer(join(dir, 'tok-folder'))],
    ['merges.txt FIFO', () => data.loadTokenizer(join(dir, 'merges-fifo'))],
    ['GLUE train.tsv FIFO', () => data.readGlue(join(dir, 'glue'), 'sst2', 'train')],
    ['CSV FIFO', () => data.readHfDataset(join(dir, 'fifo.csv'))],
    ['JSON Lines FIFO', () => data.readHfDataset(join(dir, 'fifo.jsonl'))],
    ['Parquet FIFO', () => data.readHfDataset(join(dir, 'fifo.parquet'))],
    ['CSV -> /dev/zero', () => data.readHfDataset(join(dir, 'zero.csv'))],
    ['E2E FIFO', () => data.readE2E(join(dir, 'fifo.csv'))],
    ['Alpaca FIFO', () => data.readAlpaca(join(dir, 'fifo.jsonl'))],
    ['config.json FIFO', () => loadModelFromDir(join(dir, 'model-fifo'))],
    ['config.json -> /dev/zero', () => loadModelFromDir(join(dir, 'model-zero'))],
  ];
  for (const [name, read] of cases) {
    const t0 = performance.now();
    let outcome: { error?: string; message?: string; file?: string } = {};
    try {
      await read();
    } catch (e) {
      outcome = { error: (e as Error).name, message: (e as Error).message, file: (e as { file?: string }).file };
    }
    process.stdout.write(`${JSON.stringify({ name, ms: performance.now() - t0, ...outcome })}\n`);
  }
}
