/**
 * "Every number in a notebook's text must come from an output": the numbers
 * written in markdown cells, and where each may come from.
 *
 * A number in the prose passes when some number in the notebook's saved
 * outputs (streams, text/plain and text/markdown, table HTML, plotly figure
 * data) equals it at the precision it is written with: "0.48" is any output
 * in [0.475, 0.485]; "82%" may also be an output 0.82; "6.9 M" is 6.85e6 to
 * 6.95e6. Numbers in the notebook's own code pass too: they are the settings
 * the prose describes (lr 5e-3, 320 e-mails), visible next to it.
 *
 * Not checked: code spans and blocks, link targets, heading and list
 * numbering, arXiv ids, dates and years, section signs (§3), notebook names
 * (02-classifier), and numbers glued to letters (GPT-2, LLaMA-7B, fp32, 2r).
 * Anything else that is not an output (a figure quoted from the paper, a
 * property of a data set) needs an entry in notebooks/claims-allowlist.json
 * with its reason.
 */

export interface Claim {
  /** index of the markdown cell in the notebook */
  cell: number;
  /** the number as written */
  text: string;
  value: number;
  /** half the last written digit's place value (the match tolerance) */
  tol: number;
  percent: boolean;
  /** a little of the surrounding prose, for the failure message */
  context: string;
}

export interface AllowEntry {
  /** a phrase of the markdown, numbers included, exactly as written */
  text: string;
  reason: string;
}

interface CellLike { cell_type: string; source: string | string[]; outputs?: OutputLike[] }
interface OutputLike { output_type: string; text?: string | string[]; data?: Record<string, unknown> }

const join = (s: string | string[] | undefined) => (Array.isArray(s) ? s.join('') : (s ?? ''));

/** A number as prose writes it: thousands commas, decimals, an exponent; a sign is ignored (claims compare magnitudes). */
const NUMBER = /(?<![\p{L}\p{N}_.][-−]?)[-−+]?((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?:[eE]([-−+]?\d+))?)(?![\p{L}\p{N}_])(?!\.\d)(\s?%)?(\s?M\b(?!B|iB))?/gu;

function parse(m: RegExpExecArray): { value: number; tol: number; percent: boolean } {
  const digits = m[1]!.replace(/,/g, '').replace(/−/g, '-');
  const decimals = m[2]?.length ?? 0;
  const exponent = m[3] ? Number(m[3].replace('−', '-')) : 0;
  const scale = m[5] ? 1e6 : 1;
  const value = Math.abs(Number(digits)) * scale;
  return { value, tol: 0.5 * 10 ** (exponent - decimals) * scale, percent: m[4] !== undefined };
}

/** Blanks out what is exempt from checking (keeping offsets, so context stays readable). */
export function exemptParts(markdown: string): string {
  const blank = (s: string) => s.replace(/[^\n]/g, ' ');
  return markdown
    .replace(/```[\s\S]*?```/g, blank)
    .replace(/`[^`\n]*`/g, blank)
    .replace(/\]\([^)]*\)/g, blank)
    .replace(/https?:\/\/\S+/g, blank)
    .replace(/^(#+\s*)(\d+(?:\.\d+)*[.)]?\s*(?:·\s*)?)?/gm, (_m, h: string, n?: string) => blank(h) + (n ? blank(n) : ''))
    .replace(/^(\s*)\d+\.(?=\s)/gm, (_m, ws: string) => `${ws}  `)
    .replace(/\b\d{4}\.\d{4,5}\b/g, blank) // arXiv ids
    .replace(/\b\d{4}-\d{2}-\d{2}\b/g, blank) // dates
    .replace(/(?<![\d.,])\b(19|20)\d{2}\b(?![.,]\d)/g, blank) // years
    .replace(/§\s?\d+(?:\.\d+)*/g, blank)
    .replace(/\b\d{2}-[a-z][a-z-]*/g, blank); // notebook names
}

export function claimsIn(markdown: string, cell: number): Claim[] {
  const text = exemptParts(markdown);
  const out: Claim[] = [];
  for (const m of text.matchAll(NUMBER)) {
    const { value, tol, percent } = parse(m as RegExpExecArray);
    const at = m.index!;
    out.push({ cell, text: m[0].trim(), value, tol, percent, context: markdown.slice(Math.max(0, at - 40), at + m[0].length + 30).replace(/\s+/g, ' ') });
  }
  return out;
}

/** Numbers in any text: the same pattern without the prose exemptions. */
function numbersInText(s: string, into: number[]): void {
  for (const m of s.matchAll(/(\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-−+]?\d+)?/g)) {
    const v = Number(m[0].replace(/,/g, '').replace('−', '-'));
    if (Number.isFinite(v)) into.push(v);
  }
}

function numbersInJson(v: unknown, into: number[]): void {
  if (typeof v === 'number') {
    if (Number.isFinite(v)) into.push(Math.abs(v));
  } else if (typeof v === 'string') {
    numbersInText(v, into);
  } else if (Array.isArray(v)) {
    for (const x of v) numbersInJson(x, into);
  } else if (typeof v === 'object' && v !== null) {
    for (const x of Object.values(v)) numbersInJson(x, into);
  }
}

/** Every number the saved outputs show, sorted. Scripts (the plotly.js loader, figure HTML) and images are skipped. */
export function outputNumbers(cells: CellLike[]): number[] {
  const into: number[] = [];
  for (const c of cells) {
    for (const o of c.outputs ?? []) {
      if (o.output_type === 'stream') numbersInText(join(o.text), into);
      for (const [mime, value] of Object.entries(o.data ?? {})) {
        if (mime === 'text/plain' || mime === 'text/markdown') numbersInText(join(value as string | string[]), into);
        else if (mime === 'text/html') {
          const html = join(value as string | string[]);
          if (!html.includes('<script')) numbersInText(html.replace(/<[^>]*>/g, ' '), into);
        } else if (mime.endsWith('json')) numbersInJson(value, into);
      }
    }
  }
  return into.sort((a, b) => a - b);
}

export function codeNumbers(cells: CellLike[]): number[] {
  const into: number[] = [];
  for (const c of cells) if (c.cell_type === 'code') numbersInText(join(c.source), into);
  return into.sort((a, b) => a - b);
}

function anyWithin(sorted: number[], lo: number, hi: number): boolean {
  let a = 0;
  let b = sorted.length;
  while (a < b) {
    const mid = (a + b) >> 1;
    if (sorted[mid]! < lo) a = mid + 1; else b = mid;
  }
  return a < sorted.length && sorted[a]! <= hi;
}

export function supported(c: Claim, sources: number[][]): boolean {
  // A hair of slack: "0.33" for a printed 0.325 sits exactly on the rounding boundary.
  const tol = c.tol * (1 + 1e-9) + 1e-12;
  for (const s of sources) {
    if (anyWithin(s, c.value - tol, c.value + tol)) return true;
    if (c.percent && anyWithin(s, (c.value - tol) / 100, (c.value + tol) / 100)) return true;
  }
  return false;
}

export interface CheckResult {
  unsupported: Claim[];
  /** allowlist entries that matched nothing (stale) */
  unused: AllowEntry[];
  checked: number;
}

/** The claims of one notebook that neither its outputs, its code nor the allowlist support. */
export function checkNotebook(cells: CellLike[], allow: AllowEntry[] = []): CheckResult {
  const sources = [outputNumbers(cells), codeNumbers(cells)];
  const used = new Set<AllowEntry>();
  const unsupported: Claim[] = [];
  let checked = 0;
  cells.forEach((c, i) => {
    if (c.cell_type !== 'markdown') return;
    let md = join(c.source);
    for (const a of allow) {
      if (md.includes(a.text)) {
        used.add(a);
        md = md.split(a.text).join(a.text.replace(/[^\n]/g, ' '));
      }
    }
    for (const claim of claimsIn(md, i)) {
      checked++;
      if (!supported(claim, sources)) unsupported.push(claim);
    }
  });
  return { unsupported, unused: allow.filter((a) => !used.has(a)), checked };
}
