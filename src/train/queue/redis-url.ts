/**
 * redis:// and rediss:// URLs → ioredis connection options. We parse
 * ourselves rather than hand the URL to ioredis so that a typo (a missing
 * port, a db that is not a number, a query option we would ignore) is an
 * error here instead of a silent connection to the wrong place.
 */

export interface RedisConnection {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  /** present for rediss://; the server name for SNI and certificate checks */
  tls?: { servername?: string };
}

const FORM = 'redis://[user:password@]host[:port][/db] or rediss://… (TLS)';

export function parseRedisUrl(url: string): RedisConnection {
  if (typeof url !== 'string' || url === '') throw new TypeError(`queue: expected a Redis URL, ${FORM}; got ${JSON.stringify(url)}`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`queue: ${JSON.stringify(redactUrl(url))} is not a URL; expected ${FORM}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new TypeError(`queue: unsupported scheme "${u.protocol}" in ${redactUrl(url)}; expected ${FORM}`);
  if (!u.hostname) throw new TypeError(`queue: no host in ${redactUrl(url)}; expected ${FORM}`);
  if (u.search || u.hash) throw new TypeError(`queue: ${redactUrl(url)} has a query or fragment, which is not supported; expected ${FORM}`);
  const port = u.port === '' ? 6379 : Number(u.port);
  const path = u.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d+$/.test(path)) throw new TypeError(`queue: the database in ${redactUrl(url)} must be a number (redis://host:6379/0); got "${path}"`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const out: RedisConnection = { host, port, db: path === '' ? 0 : Number(path) };
  if (u.username) out.username = decodeURIComponent(u.username);
  if (u.password) out.password = decodeURIComponent(u.password);
  // Node does not send SNI for an IP address; only name a host.
  if (u.protocol === 'rediss:') out.tls = /^[\d.]+$|:/.test(host) ? {} : { servername: host };
  return out;
}

/**
 * The URL with its password replaced, for messages and logs. `new URL`
 * accepts more than the textbook form (an upper-case scheme, leading spaces
 * and control characters, tabs and newlines anywhere, an `@` inside the
 * password), so this does not parse: everything between the scheme and the
 * last `@` is the user part, and all of it after the first `:` is hidden
 * (without a `:`, the whole user part, which may be a password too).
 * Control characters are shown escaped, so a URL cannot forge log lines.
 */
export function redactUrl(url: string): string {
  const s = String(url);
  const at = s.lastIndexOf('@');
  let out = s;
  if (at >= 0) {
    const scheme = /^[\x00-\x20]*[A-Za-z][A-Za-z0-9+.\-\t\n\r]*:[\/\\\t\n\r]*/.exec(s.slice(0, at));
    const start = scheme ? scheme[0].length : 0;
    const user = s.slice(start, at);
    const colon = user.indexOf(':');
    out = `${s.slice(0, start)}${colon >= 0 ? `${user.slice(0, colon)}:***` : '***'}${s.slice(at)}`;
  }
  return out.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
