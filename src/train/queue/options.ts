/**
 * Option checking shared by the queue's entry points: an unknown key is an
 * error that names the closest valid key, because a misspelt option that is
 * silently ignored costs a whole grid on many machines.
 */

/** Edit distance (insert, delete, substitute), for "did you mean". */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

export function closest(name: string, valid: readonly string[]): string {
  let best = valid[0]!;
  for (const v of valid) if (editDistance(name.toLowerCase(), v.toLowerCase()) < editDistance(name.toLowerCase(), best.toLowerCase())) best = v;
  return best;
}

/** Throw on the first key of `obj` that is not in `valid`, naming the closest valid one. */
export function checkKeys(where: string, obj: object, valid: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!valid.includes(k)) throw new RangeError(`${where}: unknown option "${k}"; did you mean "${closest(k, valid)}"? (valid: ${valid.join(', ')})`);
  }
}

export function checkPositiveInt(where: string, name: string, v: unknown, min = 1): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new RangeError(`${where}: ${name} must be an integer ≥ ${min}; got ${JSON.stringify(v)}`);
  return v;
}
