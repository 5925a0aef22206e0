/** JSON files read strictly: capped in size, and a repeated key is an error rather than the last value silently. */
import { CheckpointError, checkpointFailure } from './errors.js';
import { MAX_JSON_BYTES, readTextFile } from './read-file.js';

/** A JSON file such as config.json, refused before reading when it is larger than any real one. */
export function readJsonFile(file: string, what: string, maxBytes = MAX_JSON_BYTES): unknown {
  return parseJsonStrict(readTextFile(file, { maxBytes, what, fail: checkpointFailure }), file, what);
}

/** JSON.parse that also refuses a repeated key, which JSON.parse would silently resolve to the last value. */
export function parseJsonStrict(text: string, file: string, what: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(file, `${what} is not valid JSON (${(e as Error).message})`);
  }
  const dup = duplicateKey(text);
  if (dup) throw new CheckpointError(file, `${what} has the key ${JSON.stringify(dup.key)} more than once${dup.in ? ` in "${dup.in}"` : ' at the top level'} (duplicate keys are ambiguous)`);
  return value;
}

/**
 * First key repeated within one object of already-valid JSON text: one
 * linear pass with an explicit stack, so deep nesting cannot overflow it.
 */
export function duplicateKey(s: string): { key: string; in: string } | undefined {
  const stack: Array<{ keys: Set<string> | null; name: string }> = [];
  let expectKey = false;
  let lastKey = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) { // '"'
      let j = i + 1;
      let escaped = false;
      for (; s.charCodeAt(j) !== 0x22; j++) if (s.charCodeAt(j) === 0x5c) { escaped = true; j++; }
      const top = stack[stack.length - 1];
      if (expectKey && top?.keys) {
        const key = escaped ? (JSON.parse(s.slice(i, j + 1)) as string) : s.slice(i + 1, j);
        if (top.keys.has(key)) return { key, in: stack.slice(1).map((f) => f.name).join('.') };
        top.keys.add(key);
        lastKey = key;
      }
      expectKey = false;
      i = j;
    } else if (c === 0x7b || c === 0x5b) { // '{' '['
      stack.push({ keys: c === 0x7b ? new Set() : null, name: lastKey });
      expectKey = c === 0x7b;
    } else if (c === 0x7d || c === 0x5d) { // '}' ']'
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) { // ','
      expectKey = !!stack[stack.length - 1]?.keys;
    }
  }
  return undefined;
}
