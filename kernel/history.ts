/**
 * Input history of this kernel session for history_request (tail, range,
 * search). It lives in memory: a restarted kernel starts a new session.
 */
export type HistoryRow = [number, number, string | [string, string | null]];

interface Entry { line: number; input: string; output: string | null }

export interface HistoryRequest {
  output?: boolean;
  hist_access_type?: 'tail' | 'range' | 'search';
  session?: number;
  start?: number;
  stop?: number | null;
  n?: number | null;
  pattern?: string;
  unique?: boolean;
}

/** Glob as IPython's SQLite GLOB does it: *, ? and [..], matching the whole input. */
function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '[\\s\\S]*';
    else if (c === '?') re += '[\\s\\S]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end > i) { re += `[${glob.slice(i + 1, end).replace(/\\/g, '\\\\')}]`; i = end; } else re += '\\[';
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export class History {
  private readonly entries: Entry[] = [];

  /** session numbers count up per kernel start in IPython; one kernel process is one session here */
  constructor(readonly session = 1) {}

  add(line: number, input: string): void {
    this.entries.push({ line, input, output: null });
  }

  setOutput(line: number, text: string): void {
    const e = this.entries.find((x) => x.line === line);
    if (e) e.output = text;
  }

  query(req: HistoryRequest): HistoryRow[] {
    let rows: Entry[];
    switch (req.hist_access_type) {
      case 'tail':
        rows = this.entries.slice(-Math.max(0, req.n ?? 10));
        break;
      case 'range': {
        // 0 is "the current session"; negative numbers are earlier sessions, which this kernel never has.
        const s = req.session ?? 0;
        if (s !== 0 && s !== this.session) return [];
        const start = req.start ?? 1;
        const stop = req.stop ?? Infinity;
        rows = this.entries.filter((e) => e.line >= start && e.line < stop);
        break;
      }
      case 'search': {
        const re = globToRegExp(req.pattern ?? '*');
        rows = this.entries.filter((e) => re.test(e.input));
        if (req.unique) {
          const seen = new Set<string>();
          rows = rows.reverse().filter((e) => !seen.has(e.input) && seen.add(e.input)).reverse();
        }
        if (req.n) rows = rows.slice(-req.n);
        break;
      }
      default:
        throw new RangeError(`history_request: hist_access_type must be "tail", "range" or "search"; got ${JSON.stringify(req.hist_access_type)}`);
    }
    return rows.map((e) => [this.session, e.line, req.output ? [e.input, e.output] : e.input]);
  }
}
