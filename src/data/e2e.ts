/**
 * E2E NLG Challenge CSVs (`trainset.csv`, `devset.csv`, `testset_w_refs.csv`:
 * header `mr,ref`; the cleaned release adds `fixed,orig_mr`; the blind
 * `testset.csv` has only `MR`). A meaning representation is a list of
 * `attribute[value]` separated by ", ".
 *
 * Schema: `mr` (string), `ref` (string, "" when the file has no references),
 * `mrId` (int: rows with the same MR share it, since E2E scores each output
 * against all references of its MR).
 */
import { table } from 'arquero';
import { DataError } from '../util/errors.js';
import { parseCsv, readText } from './delimited.js';
import type { TaskData } from './task.js';

const ATTRIBUTE = /^([^[\],]+)\[([^\]]*)\]$/;

/** `"name[The Vaults], eatType[pub]"` → `{ name: 'The Vaults', eatType: 'pub' }`; throws on malformed input. */
export function parseMeaningRepresentation(mr: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of mr.split(/,\s*(?=[^\]]*(?:\[|$))/)) {
    const m = ATTRIBUTE.exec(part.trim());
    if (!m) throw new SyntaxError(`"${part.trim()}" is not attribute[value]`);
    out[m[1]!.trim()] = m[2]!;
  }
  return out;
}

export function readE2E(file: string): TaskData {
  const records = parseCsv(readText(file), file);
  const head = records[0];
  if (!head) throw new DataError(file, 'empty file: no header');
  const names = head.fields.map((f) => f.trim().toLowerCase());
  const mrCol = names.indexOf('mr');
  const refCol = names.indexOf('ref');
  if (mrCol < 0) throw new DataError(file, `missing column "mr"; the header has ${JSON.stringify(head.fields)}`, `line ${head.line}`);
  const rows = records.slice(1);
  if (rows.length === 0) throw new DataError(file, 'empty split: no data rows after the header');
  const mrs: string[] = [];
  const refs: string[] = [];
  const ids: number[] = [];
  const seen = new Map<string, number>();
  for (const rec of rows) {
    if (rec.fields.length !== head.fields.length) {
      throw new DataError(file, `expected ${head.fields.length} fields (${head.fields.join(', ')}), found ${rec.fields.length}`, `line ${rec.line}`);
    }
    const mr = rec.fields[mrCol]!;
    try {
      parseMeaningRepresentation(mr);
    } catch (e) {
      throw new DataError(file, `column "mr": ${(e as Error).message}; expected "attribute[value], attribute[value], ..."`, `line ${rec.line}`);
    }
    const ref = refCol < 0 ? '' : rec.fields[refCol]!;
    if (refCol >= 0 && ref.trim() === '') throw new DataError(file, 'column "ref" is empty; expected a reference text', `line ${rec.line}`);
    if (!seen.has(mr)) seen.set(mr, seen.size);
    mrs.push(mr);
    refs.push(ref);
    ids.push(seen.get(mr)!);
  }
  return {
    table: table({ mr: mrs, ref: refs, mrId: ids }),
    task: {
      name: 'e2e_nlg', kind: 'generation', source: file,
      description: 'E2E NLG: write a restaurant description from a meaning representation (attribute[value] list).',
      textFields: ['mr'], targetField: 'ref', metrics: ['bleu', 'nist', 'meteor', 'rouge-l', 'cider'],
    },
  };
}
