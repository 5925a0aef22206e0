/**
 * TypeScript evaluation, built on tslab 1.0.22's converter and executor
 * (deep requires: tslab has no exports map). The executor reports through a
 * console object we supply: log() receives the value of a cell's last
 * expression and error() receives diagnostics or the thrown value, which is
 * what lets the kernel send a real execute_result and a structured error.
 */
import { createRequire } from 'node:module';
import vm from 'node:vm';
import type { Converter, IsCompleteResult } from 'tslab/dist/converter.js';
import type { Executor } from 'tslab/dist/executor.js';
import type * as TS from '@tslab/typescript-for-tslab';
import { capturedToError, capturedToText, type ErrorContent } from './errors.js';
import { overlayTypeScriptPackages } from './resolve.js';
import type { SharedState } from './shared-state.js';

const require = createRequire(import.meta.url);
/** tslab is optional so that library-only installs (`--omit=optional`) skip the kernel's 100 MB. */
function resolveTslab(): string {
  try {
    return require.resolve('tslab/package.json').replace(/package\.json$/, '');
  } catch {
    throw new Error('the sharelora kernel needs tslab, an optional dependency that is not installed here: run `npm install tslab@1.0.22` (or reinstall sharelora without --omit=optional)');
  }
}
const tslabDir = resolveTslab();
const tslab = {
  converter: require(`${tslabDir}dist/converter`) as typeof import('tslab/dist/converter.js'),
  executor: require(`${tslabDir}dist/executor`) as typeof import('tslab/dist/executor.js'),
  inspect: require(`${tslabDir}dist/inspect`) as typeof import('tslab/dist/inspect.js'),
  /** the same module instance tslab's own `display` API writes through */
  jupyter: require(`${tslabDir}dist/jupyter`) as { lastWriteDisplayData: unknown },
  version: (require(`${tslabDir}package.json`) as { version: string }).version,
};
const ts = createRequire(`${tslabDir}package.json`)('@tslab/typescript-for-tslab') as typeof TS;

export interface ExecOutcome {
  ok: boolean;
  /** present when the cell ended in an expression with a non-null value */
  result?: { value: unknown };
  error?: ErrorContent;
  /** diagnostics printed by a cell that still succeeded */
  warnings?: string;
}

export interface Completion {
  matches: string[];
  cursor_start: number;
  cursor_end: number;
}

/** Jupyter counts cursor positions in code points, JavaScript strings in UTF-16 units. */
export function codePointsToUtf16(s: string, pos: number): number {
  let i = 0;
  for (let cp = 0; cp < pos && i < s.length; cp++) i += (s.codePointAt(i)! > 0xffff ? 2 : 1);
  return i;
}

export function utf16ToCodePoints(s: string, index: number): number {
  return [...s.slice(0, index)].length;
}

interface Capture { value?: { value: unknown }; errors: unknown[][] }

export class TsRuntime {
  readonly tsVersion = ts.version;
  readonly tslabVersion = tslab.version;
  private readonly converter: Converter;
  private readonly executor: Executor;
  private capture: Capture = { errors: [] };

  /**
   * @param cwd the notebook's folder: relative imports and file I/O start there.
   * @param repoRoot this package's root, whose dependencies back up the notebook's.
   * @param shared where the control thread sees whether a cell's synchronous code runs
   */
  constructor(cwd: string, repoRoot: string, private readonly shared?: SharedState) {
    overlayTypeScriptPackages(ts.sys as never, repoRoot, cwd);
    // The converter takes its module-resolution root from the process cwd at creation.
    const prev = process.cwd();
    process.chdir(cwd);
    try {
      this.converter = tslab.converter.createConverter({ isJS: false, isBrowser: false });
    } finally {
      process.chdir(prev);
    }
    const convs = { node: this.converter, browser: this.converter, close: () => this.converter.close() };
    this.executor = tslab.executor.createExecutor(cwd, convs, {
      log: (value: unknown) => { this.capture.value = { value }; },
      error: (...args: unknown[]) => { this.capture.errors.push(args); },
    });
  }

  /** Where tslab's `display` (import * as tslab from "tslab") sends its outputs. */
  set tslabDisplayWriter(fn: (data: unknown, update: boolean) => void) {
    tslab.jupyter.lastWriteDisplayData = fn;
  }

  async execute(code: string): Promise<ExecOutcome> {
    const capture: Capture = { errors: [] };
    this.capture = capture;
    const ok = await this.markingCellCode(() => this.executor.execute(code));
    const out: ExecOutcome = { ok };
    if (ok && capture.errors.length) out.warnings = capturedToText(capture.errors);
    if (!ok) {
      out.error = capture.errors.length
        ? capturedToError(capture.errors)
        : { ename: 'Error', evalue: 'the cell failed without reporting why', traceback: [] };
    } else if (capture.value) {
      out.result = capture.value;
    }
    return out;
  }

  /**
   * Flags the span of tslab's vm call (the cell's synchronous code), the one
   * place where SIGINT stops a cell; the control thread raises it only then.
   */
  private markingCellCode<T>(run: () => T): T {
    const shared = this.shared;
    if (!shared) return run();
    const original = vm.runInThisContext;
    vm.runInThisContext = ((code: string, options?: vm.RunningScriptOptions) => {
      shared.inCellCode = true;
      try {
        return original(code, options);
      } finally {
        shared.inCellCode = false;
      }
    }) as typeof vm.runInThisContext;
    try {
      return run();
    } finally {
      vm.runInThisContext = original;
    }
  }

  /** A top-level variable of the session, as cells see it. */
  local(name: string): unknown {
    return this.executor.locals[name];
  }

  /** Ends an awaited cell now; its promise keeps running unobserved. */
  interrupt(): void {
    this.executor.interrupt();
  }

  complete(code: string, cursorPos: number): Completion {
    const pos = codePointsToUtf16(code, cursorPos);
    const info = this.executor.complete(code, pos);
    return {
      matches: info.candidates,
      cursor_start: utf16ToCodePoints(code, info.start),
      cursor_end: utf16ToCodePoints(code, info.end),
    };
  }

  /** Type and docs of the symbol at the cursor, or undefined. */
  inspect(code: string, cursorPos: number): string | undefined {
    const info = this.executor.inspect(code, codePointsToUtf16(code, cursorPos));
    return info ? tslab.inspect.printQuickInfo(info) : undefined;
  }

  /** tslab's check says complete for broken code; a parse pass tells "invalid" apart. */
  isComplete(code: string): { status: 'complete' | 'incomplete' | 'invalid'; indent?: string } {
    const r: IsCompleteResult = tslab.converter.isCompleteCode(code);
    if (!r.completed) return { status: 'incomplete', indent: r.indent ?? '' };
    const sf = ts.createSourceFile('cell.ts', code, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
    const diags = (sf as unknown as { parseDiagnostics?: unknown[] }).parseDiagnostics ?? [];
    return { status: diags.length ? 'invalid' : 'complete' };
  }

  close(): void {
    this.executor.close();
  }
}
