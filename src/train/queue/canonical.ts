/**
 * Canonical JSON (sorted keys, no spaces): the one byte string a grid
 * configuration has on every machine, so that job ids and signatures computed
 * by the notebook and re-computed by a worker agree.
 */

/** Throws, naming the path, on anything JSON cannot carry to another machine unchanged. */
export function canonicalJson(value: unknown, where = 'value'): string {
  return encode(value, where);
}

function encode(v: unknown, path: string): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string': return JSON.stringify(v);
    case 'boolean': return v ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`${path} is ${v}, which JSON cannot carry to a worker; use a finite number or a string`);
      return JSON.stringify(Object.is(v, -0) ? 0 : v);
    case 'object': {
      if (Array.isArray(v)) return `[${v.map((x, i) => encode(x, `${path}[${i}]`)).join(',')}]`;
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        const kind = (v as object).constructor?.name ?? 'object';
        throw new TypeError(`${path} is a ${kind}, which cannot travel to a worker as JSON; use a string, number, boolean, array or plain object${v instanceof RegExp ? ` (e.g. the pattern as a string, ${JSON.stringify((v as RegExp).source)})` : ''}`);
      }
      const keys = Object.keys(v as object).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${encode((v as Record<string, unknown>)[k], `${path}.${k}`)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`${path} is ${v === undefined ? 'undefined' : `a ${typeof v}`}, which cannot travel to a worker as JSON`);
  }
}

/**
 * Metrics to and from the wire. JSON turns NaN and ±Infinity into null; a
 * diverged run's NaN loss must come back as NaN, as it does in-process.
 */
const NON_FINITE = '$sharelora.nonFinite';

export function metricsToWire(v: unknown, path = 'metrics'): unknown {
  if (typeof v === 'number') return Number.isFinite(v) ? v : { [NON_FINITE]: String(v) };
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (Array.isArray(v)) return v.map((x, i) => metricsToWire(x, `${path}[${i}]`));
  if (typeof v === 'object') {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError(`${path} is a ${(v as object).constructor?.name ?? 'object'}; a recipe must return plain JSON values (numbers, strings, booleans, arrays, plain objects) — read tensors with await t.data() and convert typed arrays with Array.from`);
    }
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, metricsToWire(x, `${path}.${k}`)]));
  }
  throw new TypeError(`${path} is ${v === undefined ? 'undefined' : `a ${typeof v}`}; a recipe must return plain JSON values`);
}

export function metricsFromWire(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(metricsFromWire);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    // only what metricsToWire writes: {"$sharelora.nonFinite":"42"} is an object, not 42
    if (keys.length === 1 && keys[0] === NON_FINITE && (o[NON_FINITE] === 'NaN' || o[NON_FINITE] === 'Infinity' || o[NON_FINITE] === '-Infinity')) return Number(o[NON_FINITE]);
    return Object.fromEntries(keys.map((k) => [k, metricsFromWire(o[k])]));
  }
  return v;
}
