/**
 * Just enough RFC 822 / MIME to turn a SpamAssassin message into readable text:
 * the Subject plus the text/plain parts (HTML parts with tags stripped when a
 * message has no plain part). Headers are dropped on purpose: Received lines and
 * mailing-list headers identify the collection a message came from, which
 * would let a classifier learn "which mailbox" instead of "spam or ham".
 */

/** Bodies are capped because a few messages carry ~100 kB of pasted logs; no model here sees that far. */
export const MAX_BODY_CHARS = 10_000;

export interface ParsedEmail {
  subject: string;
  /** ISO 8601 from the Date header, or null when absent or unparseable (forged spam dates are common). */
  date: string | null;
  body: string;
}

type Headers = Map<string, string>;

function splitMessage(raw: string): { headers: Headers; body: string } {
  const cut = raw.indexOf('\n\n');
  const head = cut < 0 ? raw : raw.slice(0, cut);
  const body = cut < 0 ? '' : raw.slice(cut + 2);
  const headers: Headers = new Map();
  let last = '';
  for (const line of head.split('\n')) {
    if (/^[ \t]/.test(line) && last) {
      headers.set(last, `${headers.get(last)} ${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim().toLowerCase();
    // The first occurrence wins: later Subject/Date lines are usually quoted or forwarded.
    if (!headers.has(last)) headers.set(last, line.slice(colon + 1).trim());
    else last = '';
  }
  return { headers, body };
}

function param(value: string, name: string): string | undefined {
  const m = new RegExp(`${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, 'i').exec(value);
  return m ? (m[1] ?? m[2]) : undefined;
}

function nodeEncoding(charset: string | undefined): BufferEncoding {
  return charset && /utf-?8/i.test(charset) ? 'utf8' : 'latin1';
}

function decodeQuotedPrintable(text: string, charset?: string): string {
  const bytes: number[] = [];
  const soft = text.replace(/=\n/g, '');
  for (let i = 0; i < soft.length; i++) {
    const hex = soft[i] === '=' ? soft.slice(i + 1, i + 3) : '';
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else bytes.push(soft.charCodeAt(i) & 0xff);
  }
  return Buffer.from(bytes).toString(nodeEncoding(charset));
}

/** RFC 2047 encoded words in a header: =?charset?B|Q?text?= */
function decodeHeader(value: string): string {
  return value.replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_, charset: string, enc: string, text: string) =>
    enc.toUpperCase() === 'B'
      ? Buffer.from(text, 'base64').toString(nodeEncoding(charset))
      : decodeQuotedPrintable(text.replace(/_/g, ' '), charset),
  );
}

const ENTITIES: Record<string, string> = { nbsp: ' ', amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", copy: '©', reg: '®' };

export function htmlToText(html: string): string {
  return html
    .replace(/<(script|style)[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<(br|\/p|\/div|\/tr|\/li|\/h\d)\b[^>]*>/gi, '\n')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#x?[0-9a-f]+|[a-z]+);/gi, (m, e: string) => {
      if (e[0] === '#') {
        const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        return code > 0 && code < 0x110000 ? String.fromCodePoint(code) : ' ';
      }
      return ENTITIES[e.toLowerCase()] ?? m;
    });
}

function partText(headers: Headers, body: string, depth: number): { plain: string[]; html: string[] } {
  const type = (headers.get('content-type') ?? 'text/plain').toLowerCase();
  const boundary = param(headers.get('content-type') ?? '', 'boundary');
  if (type.startsWith('multipart/') && boundary && depth < 5) {
    const out = { plain: [] as string[], html: [] as string[] };
    const pieces = body.split(`--${boundary}`).slice(1);
    for (const piece of pieces) {
      if (piece.startsWith('--')) break;
      const sub = splitMessage(piece.replace(/^[ \t]*\n/, ''));
      const got = partText(sub.headers, sub.body, depth + 1);
      out.plain.push(...got.plain);
      out.html.push(...got.html);
    }
    return out;
  }
  if (!type.startsWith('text/')) return { plain: [], html: [] };
  const charset = param(headers.get('content-type') ?? '', 'charset');
  const encoding = (headers.get('content-transfer-encoding') ?? '').toLowerCase();
  const text = encoding.includes('quoted-printable') ? decodeQuotedPrintable(body, charset)
    : encoding.includes('base64') ? Buffer.from(body.replace(/\s+/g, ''), 'base64').toString(nodeEncoding(charset))
    : body;
  // Many 2002 spams send HTML with no Content-Type at all.
  const isHtml = type.startsWith('text/html') || /<(html|body|table|font)\b/i.test(text.slice(0, 2000));
  return isHtml ? { plain: [], html: [htmlToText(text)] } : { plain: [text], html: [] };
}

function tidy(text: string): string {
  return text
    .replace(/[ \t\u00a0]+/g, ' ')
    .replace(/ ?\n ?/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

export function parseEmail(raw: string): ParsedEmail {
  const { headers, body } = splitMessage(raw.replace(/\r\n?/g, '\n'));
  const parts = partText(headers, body, 0);
  const text = tidy((parts.plain.length > 0 ? parts.plain : parts.html).join('\n\n'));
  const dateHeader = (headers.get('date') ?? '').replace(/\s*\([^)]*\)\s*$/, '');
  const t = dateHeader ? Date.parse(dateHeader) : NaN;
  return {
    subject: tidy(decodeHeader(headers.get('subject') ?? '')),
    date: Number.isFinite(t) ? new Date(t).toISOString() : null,
    body: text.length > MAX_BODY_CHARS ? text.slice(0, MAX_BODY_CHARS) : text,
  };
}
