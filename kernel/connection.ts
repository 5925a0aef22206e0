/** The connection file Jupyter writes for a kernel: where to listen and how to sign. */
import { readFileSync } from 'node:fs';

export interface ConnectionInfo {
  transport: 'tcp' | 'ipc';
  ip: string;
  shell_port: number;
  iopub_port: number;
  stdin_port: number;
  control_port: number;
  hb_port: number;
  key: string;
  /** node crypto's name for the HMAC digest, from "hmac-sha256" etc. */
  digest: string;
}

export type Channel = 'shell' | 'iopub' | 'stdin' | 'control' | 'hb';

export function readConnectionFile(path: string): ConnectionInfo {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read the Jupyter connection file ${path}: ${(e as Error).message}`);
  }
  return parseConnectionInfo(raw, path);
}

export function parseConnectionInfo(raw: unknown, source = 'connection info'): ConnectionInfo {
  const c = raw as Record<string, unknown>;
  const bad = (field: string, expected: string) =>
    new Error(`${source}: "${field}" must be ${expected}; got ${JSON.stringify(c?.[field])}`);
  if (typeof c !== 'object' || c === null) throw new Error(`${source}: expected a JSON object`);
  const transport = c.transport ?? 'tcp';
  if (transport !== 'tcp' && transport !== 'ipc') throw bad('transport', '"tcp" or "ipc"');
  if (typeof c.ip !== 'string' || c.ip === '') throw bad('ip', 'an address such as "127.0.0.1"');
  const ports = {} as Record<'shell_port' | 'iopub_port' | 'stdin_port' | 'control_port' | 'hb_port', number>;
  for (const p of ['shell_port', 'iopub_port', 'stdin_port', 'control_port', 'hb_port'] as const) {
    const v = c[p];
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 65535) throw bad(p, 'an integer port in 0..65535');
    ports[p] = v as number;
  }
  const key = c.key ?? '';
  if (typeof key !== 'string') throw bad('key', 'a string');
  const scheme = c.signature_scheme ?? 'hmac-sha256';
  const m = typeof scheme === 'string' ? /^hmac-(sha256|sha512|sha384|sha224|sha1|md5)$/.exec(scheme) : null;
  if (!m) throw bad('signature_scheme', 'one of hmac-sha256, hmac-sha512, hmac-sha384, hmac-sha224, hmac-sha1, hmac-md5');
  return { transport, ip: c.ip, ...ports, key, digest: m[1]! };
}

/** The zmq endpoint for one channel; binds only to the address the file names. */
export function endpoint(info: ConnectionInfo, channel: Channel): string {
  const port = info[`${channel}_port` as const];
  return info.transport === 'ipc' ? `ipc://${info.ip}-${port}` : `tcp://${info.ip.includes(':') ? `[${info.ip}]` : info.ip}:${port}`;
}
