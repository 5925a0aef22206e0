/**
 * Gives every cell of the named notebooks an id where it has none (nbformat
 * 4.5; nbconvert warns "MissingIDFieldWarning … will become a hard error"),
 * changing nothing else: outputs, sources and existing ids stay as they are.
 * Safe to rerun; a notebook that already has every id is not rewritten.
 *
 *   npm run build && node dist/scripts/notebook-cell-ids.js notebooks/*.ipynb
 */
import { addCellIds, readNotebook, writeNotebook } from '../kernel/notebook-file.js';

const files = process.argv.slice(2);
if (!files.length) {
  process.stderr.write('usage: node dist/scripts/notebook-cell-ids.js <notebook.ipynb>...\n');
  process.exit(2);
}
for (const file of files) {
  const nb = readNotebook(file);
  const minor = nb.nbformat_minor;
  const added = addCellIds(nb);
  if (added === 0 && nb.nbformat_minor === minor) {
    process.stdout.write(`${file}: every cell has an id\n`);
    continue;
  }
  writeNotebook(file, nb);
  process.stdout.write(`${file}: ${added} cell id${added === 1 ? '' : 's'} added\n`);
}
