/**
 * A loopback HTTP/1.1 server written on raw sockets, for the hostile-Hub
 * tests: unlike node:http it can lie about Content-Length, send headers no
 * real server would, go silent before or in the middle of an answer, and
 * send a body without any length (ended by closing the connection).
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/** `path` as sent, still percent-encoded. */
export interface RawRequest { method: string; path: string; headers: Record<string, string> }

export interface RawAnswer {
  status?: number;
  headers?: Record<string, string>;
  body?: Uint8Array;
  /** Accept the connection and the request, then say nothing. */
  silent?: boolean;
  /** Send the headers and this many body bytes, then stall with the connection open. */
  stallAfter?: number;
}

export interface RawServer {
  endpoint: string;
  requests: string[];
  close(): Promise<void>;
}

export async function startRawServer(answer: (req: RawRequest) => RawAnswer): Promise<RawServer> {
  const sockets = new Set<Socket>();
  const requests: string[] = [];
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = '';
    socket.on('data', (d) => {
      if (head.includes('\r\n\r\n')) return;
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const [start, ...lines] = head.split('\r\n\r\n')[0]!.split('\r\n');
      const [method, path] = start!.split(' ') as [string, string];
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      requests.push(`${method} ${path}`);
      const a = answer({ method, path, headers });
      if (a.silent) return;
      const body = method === 'HEAD' ? new Uint8Array(0) : a.body ?? new Uint8Array(0);
      const lines2 = Object.entries({ connection: 'close', ...a.headers }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      socket.write(`HTTP/1.1 ${a.status ?? 200} X\r\n${lines2}\r\n`, 'latin1');
      if (a.stallAfter !== undefined) {
        socket.write(body.subarray(0, a.stallAfter));
        return;
      }
      socket.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
