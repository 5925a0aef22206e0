/**
 * A loopback HTTP server speaking the Hub's download protocol, for the
 * resolver tests: `/{id}/resolve/{revision}/{file}`, X-Repo-Commit on every
 * answer, git blob ETags for small files, and for LFS files a 302 to a CDN path
 * carrying X-Linked-Etag (the sha256) and X-Linked-Size, as huggingface.co does.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRepo {
  commit: string;
  /** Branch or tag names that resolve to the commit. */
  refs: string[];
  files: Record<string, Uint8Array>;
  /** Files served through the LFS redirect. */
  lfs: string[];
  /** Serve other bytes than the advertised sha256 (a corrupt CDN). */
  corrupt?: boolean;
}

export interface HubServer {
  endpoint: string;
  requests: string[];
  close(): Promise<void>;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const gitBlobSha = (b: Uint8Array) => createHash('sha1').update(`blob ${b.byteLength}\0`).update(b).digest('hex');

export async function startHub(repos: Record<string, FakeRepo>): Promise<HubServer> {
  const cdn = new Map<string, Uint8Array>();
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const url = new URL(req.url ?? '/', 'http://localhost');
    const body = (status: number, headers: Record<string, string>, data?: Uint8Array) => {
      res.writeHead(status, { ...headers, 'content-length': String(data?.byteLength ?? 0) });
      res.end(req.method === 'HEAD' ? undefined : data);
    };
    const cdnMatch = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    if (cdnMatch) {
      const data = cdn.get(cdnMatch[1]!);
      return data ? body(200, { etag: '"cdn-etag"' }, data) : body(404, {});
    }
    const m = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const repo = m ? repos[decodeURIComponent(m[1]!)] : undefined;
    if (!m || !repo) return body(401, { 'x-error-code': 'RepositoryNotFound', 'x-error-message': 'Repository not found' });
    const revision = decodeURIComponent(m[2]!);
    if (revision !== repo.commit && !repo.refs.includes(revision)) {
      return body(404, { 'x-error-code': 'RevisionNotFound', 'x-error-message': 'Invalid rev id: ' + revision });
    }
    const file = m[3]!.split('/').map(decodeURIComponent).join('/');
    const data = repo.files[file];
    if (!data) return body(404, { 'x-error-code': 'EntryNotFound', 'x-error-message': 'Entry not found', 'x-repo-commit': repo.commit });
    if (repo.lfs.includes(file)) {
      const sha = sha256(data);
      cdn.set(sha, repo.corrupt ? data.map((x) => x ^ 1) : data);
      return body(302, {
        location: `/cdn/${sha}`, 'x-repo-commit': repo.commit, 'x-linked-etag': `"${sha}"`,
        'x-linked-size': String(data.byteLength), etag: `"${gitBlobSha(data)}"`,
      });
    }
    return body(200, { 'x-repo-commit': repo.commit, etag: `"${gitBlobSha(data)}"`, 'content-type': 'application/octet-stream' }, data);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
