/** Number and text formatting shared by tables, progress lines and tensor views. */

/**
 * Integers print exactly (no separators: steps and ids get copied back into code);
 * other finite numbers get `digits` significant digits, switching to exponent
 * form outside [1e-4, 1e6) where fixed notation would hide the magnitude.
 */
export function formatNumber(x: number, digits = 4): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '-∞';
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-4 || a >= 1e6)) return Number(x.toPrecision(digits)).toExponential();
  return String(Number(x.toPrecision(digits)));
}

/** 12345.6 → "12.3k": rates and token counts are read at a glance, not copied. */
export function formatCompact(x: number): string {
  if (!Number.isFinite(x)) return formatNumber(x);
  const a = Math.abs(x);
  if (a >= 1e9) return `${(x / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${(x / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${(x / 1e3).toFixed(1)}k`;
  return a >= 100 ? x.toFixed(0) : String(Number(x.toPrecision(3)));
}

/** Seconds as h:mm:ss or m:ss; "?" when unknown so an ETA never prints NaN. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** One table cell as text; long values are cut so one cell cannot blow up a table. */
export function formatValue(v: unknown, digits = 4, maxLength = 60): string {
  let s: string;
  if (v === null || v === undefined) s = '';
  else if (typeof v === 'number') s = formatNumber(v, digits);
  else if (typeof v === 'bigint') s = `${v}`;
  else if (v instanceof Date) s = Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString();
  else if (typeof v === 'string') s = v;
  else if (typeof v === 'object') {
    try {
      s = JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}` : x)) ?? String(v);
    } catch {
      s = String(v);
    }
  } else s = String(v);
  return s.length > maxLength ? `${s.slice(0, maxLength - 1)}…` : s;
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}
