/**
 * Options objects are checked: a misspelled key (`learningRate`, `warmup`,
 * `maxLenght`) would otherwise be ignored and the run would go on with the
 * default, which is the worst kind of wrong — it looks like it worked.
 */

/**
 * A bad options object or option value; `where` is the function, `field` the
 * key. A TypeError, as JavaScript's own errors for a wrong argument are, so
 * code that caught the TypeErrors some checkers threw before still catches it.
 */
export class OptionsError extends TypeError {
  constructor(public readonly where: string, public readonly field: string, public readonly problem: string) {
    super(`${where}: ${field ? `option "${field}" ` : ''}${problem}`);
    this.name = 'OptionsError';
  }
}

/** Levenshtein distance, case-insensitive: `LR` and `lr` are one typo apart at most, not two. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase(), t = b.toLowerCase();
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const cur = [i];
    for (let j = 1; j <= t.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (s[i - 1] === t[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[t.length];
}

/**
 * How far `word` is from `candidate`: the edit distance, with snake_case
 * folded (`weight_decay` is `weightDecay`) and an abbreviation by initials
 * counted as exact (`learningRate` is `lr`), since those are the usual ways a
 * key from another library is spelled.
 */
function distance(word: string, candidate: string): number {
  const parts = word.split(/_+|(?=[A-Z])/).filter(Boolean);
  if (parts.length > 1 && parts.map((p) => p[0]).join('').toLowerCase() === candidate.toLowerCase()) return 0;
  return Math.min(editDistance(word, candidate), editDistance(word.replace(/_/g, ''), candidate));
}

/** The candidate nearest to `word` (ties: the first listed), or undefined when there are none. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined, bestD = Infinity;
  for (const c of candidates) {
    const d = distance(word, c);
    if (d < bestD) { best = c; bestD = d; }
  }
  return best;
}

export const describeValue = (v: unknown): string => {
  if (v === undefined) return 'undefined';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'function') return 'a function';
  if (Array.isArray(v)) return v.length <= 8 ? `[${v.map(describeValue).join(', ')}]` : `an array of ${v.length}`;
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(v);
  }
};

/** an object literal (or Object.create(null)), from this realm or another vm context's */
export const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === null || Object.getPrototypeOf(proto) === null;
};

/**
 * Throw an OptionsError unless `options` is undefined or a plain object whose
 * own keys are all in `allowed`. The error names the unknown key and the
 * closest valid one.
 */
export function checkOptions(where: string, options: unknown, allowed: readonly string[]): void {
  if (options === undefined) return;
  if (!isPlainObject(options)) throw new OptionsError(where, '', `expects an options object { ${allowed.join(', ')} }, got ${describeValue(options)}`);
  for (const key of Object.keys(options)) {
    if (allowed.includes(key)) continue;
    const near = closest(key, allowed);
    throw new OptionsError(where, key, `is not an option${near ? `; did you mean "${near}"?` : ''} (valid: ${allowed.join(', ')})`);
  }
}

type Exhaustive<T, K extends readonly PropertyKey[]> = [Exclude<keyof T, K[number]>] extends [never] ? K : { missingOptionKeys: Exclude<keyof T, K[number]> };

/**
 * The keys of an options interface, listed at runtime; the type check fails
 * when one is missing, so a new option cannot be added to the interface and
 * then rejected as unknown.
 * @example const KEYS = optionKeys<PadOptions>()(['padTo', 'padToMultipleOf']);
 */
export const optionKeys = <T>() => <const K extends readonly (keyof T & string)[]>(keys: K & Exhaustive<T, K>): readonly string[] => keys;
