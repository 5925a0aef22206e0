/**
 * The live view of a queued grid. In a notebook: one output updated in place
 * (counts, ETA, a row per worker, the last runs to finish). Elsewhere: a plain
 * status line whenever the counts change, at most every few seconds.
 */
import { display, type DisplayHandle } from '../../notebook/display.js';
import { escapeHtml, formatDuration } from '../../notebook/format.js';
import { Html } from '../../notebook/mime.js';
import { displaySink } from '../../notebook/session.js';
import { clip } from '../grid-rows.js';

export interface RunningRun {
  settings: string;
  worker: string;
  attempt: number;
  seconds: number;
  /** what the recipe last reported through ctx.progress */
  progress?: string;
}

export interface GridStatus {
  grid: string;
  total: number;
  /** finished before this call (stored results) */
  cached: number;
  /** finished during this call */
  done: number;
  failed: number;
  running: RunningRun[];
  /** waiting for a worker, including retries waiting out their back-off */
  queued: number;
  /** of the queued: retries waiting out their back-off */
  retrying: number;
  workersConnected: number;
  perWorker: Map<string, { done: number; failed: number }>;
  elapsedS: number;
  etaS?: number;
  /** the last few finished runs, newest last */
  recent: string[];
  final?: string;
}

export function statusLine(s: GridStatus): string {
  const parts = [`grid ${s.grid}: ${s.cached + s.done}/${s.total} done${s.cached ? ` (${s.cached} stored)` : ''}`,
    `${s.running.length} running`, `${s.queued} queued${s.retrying ? ` (${s.retrying} retrying)` : ''}`, `${s.failed} failed`,
    `${s.workersConnected} worker${s.workersConnected === 1 ? '' : 's'} connected`, `${formatDuration(s.elapsedS)} elapsed`];
  if (s.etaS !== undefined) parts.push(`ETA ${formatDuration(s.etaS)}`);
  if (s.final) parts.push(s.final);
  else if (s.workersConnected === 0 && s.queued + s.running.length > 0) parts.push('no worker is connected: start one with `sharelora worker --queue …`');
  return parts.join(' · ');
}

function statusHtml(s: GridStatus): Html {
  const workers = new Set([...s.perWorker.keys(), ...s.running.map((r) => r.worker)]);
  const rows = [...workers].sort().map((w) => {
    const mine = s.running.filter((r) => r.worker === w);
    const c = s.perWorker.get(w) ?? { done: 0, failed: 0 };
    const now = mine.map((r) => `${escapeHtml(r.settings)}${r.attempt > 1 ? ` (try ${r.attempt})` : ''}`).join('<br>') || '<i>idle</i>';
    const prog = mine.map((r) => escapeHtml(`${r.progress ?? ''} ${formatDuration(r.seconds)}`.trim())).join('<br>');
    return `<tr><td>${escapeHtml(w)}</td><td>${now}</td><td>${prog}</td><td>${c.done}</td><td>${c.failed}</td></tr>`;
  }).join('');
  const frac = s.total ? (s.cached + s.done + s.failed) / s.total : 1;
  const table = rows ? `<table style="font-size:12px;margin-top:4px"><tr><th>worker</th><th>running</th><th>progress</th><th>done</th><th>failed</th></tr>${rows}</table>` : '';
  const recent = s.recent.length ? `<div style="margin-top:4px;color:#555">${s.recent.map(escapeHtml).join('<br>')}</div>` : '';
  const html = `<div class="sharelora-grid" style="font-family:monospace;font-size:12px"><progress value="${Math.round(frac * 1000)}" max="1000" style="width:300px;vertical-align:middle"></progress> ${escapeHtml(statusLine(s))}${table}${recent}</div>`;
  const text = [statusLine(s), ...s.running.map((r) => `  ${r.worker}: ${r.settings}${r.progress ? ` · ${r.progress}` : ''} · ${formatDuration(r.seconds)}`)].join('\n');
  return new Html(html, text);
}

/** Shows GridStatus: in place in a notebook, as lines elsewhere (`out`, or nothing when undefined). */
export class GridDisplay {
  private handle?: DisplayHandle;
  private lastDraw = 0;
  private lastLine = '';
  private readonly notebook = displaySink() !== undefined;

  /** `out` gets the plain status lines (none when undefined); redraws at most every 0.5 s, lines every 3 s */
  constructor(private readonly out: ((line: string) => void) | undefined) {}

  show(s: GridStatus, force = false): void {
    const now = performance.now();
    if (this.notebook) {
      if (!force && now - this.lastDraw < 500) return;
      this.lastDraw = now;
      if (this.handle) this.handle.update(statusHtml(s));
      else this.handle = display(statusHtml(s), { displayId: true });
      return;
    }
    if (!this.out) return;
    // the line changes every second through "elapsed"; compare what matters
    const key = `${s.cached + s.done}/${s.running.length}/${s.queued}/${s.failed}/${s.workersConnected}/${s.final ?? ''}`;
    if (!force && (key === this.lastLine || now - this.lastDraw < 3000)) return;
    this.lastLine = key;
    this.lastDraw = now;
    this.out(statusLine(s));
  }
}

/** What a recipe passed to ctx.progress, as a short text. */
export function progressText(p: unknown): string | undefined {
  if (typeof p === 'number' && Number.isFinite(p)) return `${(100 * Math.min(1, Math.max(0, p))).toFixed(0)}%`;
  // read back from Redis: at most a few short fields
  if (p && typeof p === 'object') return clip(Object.entries(p).slice(0, 8).map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(4) : typeof v === 'object' ? '…' : v}`).join(' '), 200);
  return undefined;
}
