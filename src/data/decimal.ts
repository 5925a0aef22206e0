/**
 * Numbers written as text in data files. Number() also reads "0x3", "0b11",
 * "Infinity" and "" (as 0), so a typo or hex-looking id would silently become
 * a label; only plain decimal notation is a number here.
 */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** The value of a decimal number such as "3", "-1", "3.80" or "1e-3" (surrounding blanks allowed), else undefined. */
export function parseDecimal(text: string): number | undefined {
  const t = text.trim();
  if (!DECIMAL.test(t)) return undefined;
  const v = Number(t);
  return Number.isFinite(v) ? v : undefined;
}
