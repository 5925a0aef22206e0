/**
 * Cells compile and run with the notebook's folder as home, so `import "./mymod"`
 * and the notebook's own node_modules resolve exactly as in tslab. The
 * kernel's packages (sharelora itself, arquero, tfjs, @types/node, …) are
 * added *behind* those, as if installed in a node_modules at the filesystem
 * root: the last place Node-style lookup tries, so whatever the notebook's
 * folder provides wins, and any folder works, with or without node_modules.
 *
 * Two resolvers need the fallback: tslab's TypeScript (Node10 lookup through
 * its ts.sys) and Node's CommonJS loader (cells are compiled to require()).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import Module from 'node:module';
import { dirname, join, parse, isAbsolute } from 'node:path';

export const PACKAGE_NAME = 'sharelora';

/** node_modules folders the kernel's own packages live in, nearest first. */
function kernelNodeModules(repoRoot: string): string[] {
  const dirs: string[] = [];
  for (let d = repoRoot; ; d = dirname(d)) {
    if (!d.endsWith('/node_modules') && existsSync(join(d, 'node_modules'))) dirs.push(join(d, 'node_modules'));
    if (dirname(d) === d) return dirs;
  }
}

const slash = (p: string) => p.replace(/\\/g, '/');

interface TsSys {
  fileExists(p: string): boolean;
  directoryExists(p: string): boolean;
  readFile(p: string, enc?: string): string | undefined;
  realpath?(p: string): string;
  getDirectories(p: string): string[];
  readDirectory(p: string, ...rest: unknown[]): string[];
}

/**
 * Make `<root>/node_modules/<pkg>/…` readable by TypeScript when it does not
 * really exist, by mapping it onto the kernel's packages. realpath maps too,
 * so a package reached both ways is one set of declarations, not two.
 */
export function overlayTypeScriptPackages(sys: TsSys, repoRoot: string, cwd: string): void {
  const vroot = slash(join(parse(cwd).root, 'node_modules'));
  const dirs = kernelNodeModules(repoRoot).map(slash);
  const topCache = new Map<string, string | undefined>();
  const o = {
    fileExists: sys.fileExists.bind(sys),
    directoryExists: sys.directoryExists.bind(sys),
    readFile: sys.readFile.bind(sys),
    realpath: sys.realpath?.bind(sys),
    getDirectories: sys.getDirectories.bind(sys),
    readDirectory: sys.readDirectory.bind(sys),
  };

  const map = (p: string): string | undefined => {
    p = slash(p);
    if (p !== vroot && !p.startsWith(`${vroot}/`)) return undefined;
    if (p === vroot) return dirs[0];
    const rest = p.slice(vroot.length + 1);
    const segs = rest.split('/');
    const top = segs[0]!.startsWith('@') ? segs.slice(0, 2).join('/') : segs[0]!;
    if (!topCache.has(top)) {
      topCache.set(top, top === PACKAGE_NAME ? slash(repoRoot) : dirs.map((d) => `${d}/${top}`).find((c) => existsSync(c)));
    }
    const base = topCache.get(top);
    if (!base) return undefined;
    const tail = rest.slice(top.length);
    return base + tail;
  };
  const real = (p: string) => o.fileExists(p) || o.directoryExists(p);

  sys.fileExists = (p) => o.fileExists(p) || (!real(p) && !!map(p) && o.fileExists(map(p)!));
  sys.directoryExists = (p) => o.directoryExists(p) || (!real(p) && !!map(p) && o.directoryExists(map(p)!));
  sys.readFile = (p, enc) => (real(p) || !map(p) ? o.readFile(p, enc) : o.readFile(map(p)!, enc));
  // TypeScript includes every package it lists under a types root. The kernel's own @types hold
  // build-time extras (emscripten, estree, …); cells need only Node's, and parsing the rest costs seconds.
  const typesRoot = `${vroot}/@types`;
  sys.getDirectories = (p) => {
    if (real(p) || !map(p)) return o.getDirectories(p);
    const dirsThere = o.getDirectories(map(p)!);
    return slash(p) === typesRoot ? dirsThere.filter((d) => d === 'node') : dirsThere;
  };
  sys.readDirectory = (p, ...rest) => (real(p) || !map(p) ? o.readDirectory(p, ...rest) : o.readDirectory(map(p)!, ...rest));
  if (o.realpath) {
    const rp = o.realpath;
    sys.realpath = (p) => (real(p) || !map(p) ? rp(p) : rp(map(p)!));
  }
}

type ResolveFilename = (request: string, parent: unknown, isMain: boolean, options?: unknown) => string;

/**
 * Node's loader gets the same fallback: a bare specifier that the requiring
 * file cannot find is retried from the kernel's package. Module._resolveFilename
 * is the one hook every require() passes through, including the require of
 * helper modules cells import from the notebook's folder.
 */
export function fallbackToKernelPackages(repoRoot: string): void {
  const M = Module as unknown as { _resolveFilename: ResolveFilename };
  const original = M._resolveFilename;
  const kernelRequire = createRequire(join(repoRoot, 'package.json'));
  M._resolveFilename = function (request, parent, isMain, options) {
    try {
      return original.call(this, request, parent, isMain, options);
    } catch (e) {
      const bare = !request.startsWith('.') && !isAbsolute(request) && !request.startsWith('node:');
      if (!bare || (e as { code?: string }).code !== 'MODULE_NOT_FOUND') throw e;
      try {
        return kernelRequire.resolve(request);
      } catch {
        throw e;
      }
    }
  };
}
