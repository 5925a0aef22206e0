/**
 * Training progress as TrainerCallbacks. In a notebook: a bar (steps, loss,
 * tokens/s, ETA) updated in place through one display id, and a loss plot
 * refreshed every `plotEvery` steps. Elsewhere: plain text lines.
 *
 * @example
 * await trainer.fit({ callbacks: [progressBar({ plotEvery: 50 })] })
 */
import { display, type DisplayHandle } from './display.js';
import { displaySink } from './session.js';
import { Figure, type Trace } from './figure.js';
import { Html, MIME_BUNDLE, type Displayable, type DisplayOutput, type RenderOptions } from './mime.js';
import { escapeHtml, formatCompact, formatDuration, formatNumber } from './format.js';
import { checkOptions as checkKeys, optionKeys } from '../util/options.js';

/**
 * The callbacks progressBar returns: a Trainer's (train/callbacks.ts,
 * TrainerCallbacks), stated by what the bar reads of them, so that display
 * code does not import training.
 */
export interface ProgressCallbacks {
  onStart(info: { totalSteps: number }): void;
  onStep(rec: { step: number; loss: number; tokens: number; evalLoss?: number }): void;
  onEval(e: { step: number; evalLoss: number; metrics?: Record<string, number> }): void;
  onEnd(info: { interrupted: boolean }): void;
}

export interface ProgressOptions {
  /** notebook: refresh the loss plot every N steps (default 20; 0 = no plot) */
  plotEvery?: number;
  /** plain text: print a line every N steps (default: about 20 lines per run) */
  printEvery?: number;
  /** notebook: least time between bar redraws, in ms (default 250) */
  minIntervalMs?: number;
  /** plain text destination (default process.stdout) */
  out?: { write(s: string): unknown };
}

interface RunState {
  total?: number;
  t0: number;
  done: number;
  tokens: number;
  loss?: number;
  steps: number[];
  losses: number[];
  evals: { step: number; loss: number }[];
}

function checkOptions(o: ProgressOptions): void {
  checkKeys('progressBar', o, optionKeys<ProgressOptions>()(['plotEvery', 'printEvery', 'minIntervalMs', 'out']));
  for (const k of ['plotEvery', 'printEvery', 'minIntervalMs'] as const) {
    const v = o[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new RangeError(`progressBar: ${k} must be a non-negative integer; got ${v}`);
  }
}

function summaryLine(s: RunState): string {
  const elapsed = (performance.now() - s.t0) / 1000;
  const parts = [s.total ? `step ${s.done}/${s.total}` : `step ${s.done}`];
  if (s.loss !== undefined) parts.push(`loss ${formatNumber(s.loss)}`);
  if (s.tokens > 0 && elapsed > 0) parts.push(`${formatCompact(s.tokens / elapsed)} tok/s`);
  parts.push(`${formatDuration(elapsed)} elapsed`);
  if (s.total && s.done > 0 && s.done < s.total) parts.push(`ETA ${formatDuration((elapsed / s.done) * (s.total - s.done))}`);
  return parts.join(' · ');
}

function barView(s: RunState, status?: string): Html {
  const frac = s.total ? Math.min(1, s.done / s.total) : 0;
  const line = summaryLine(s) + (status ? ` · ${status}` : '');
  const width = 30;
  const filled = Math.round(frac * width);
  const text = s.total ? `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${line}` : line;
  const bar = s.total ? `<progress value="${s.done}" max="${s.total}" style="width:300px;vertical-align:middle"></progress> ` : '';
  return new Html(`<div class="sharelora-progress" style="font-family:monospace;font-size:12px">${bar}${escapeHtml(line)}</div>`, text);
}

function lossFigure(s: RunState): Figure {
  const finite = (v: number) => (Number.isFinite(v) ? v : null);
  const traces: Trace[] = [{ type: 'scatter', mode: 'lines', name: 'train loss', x: s.steps, y: s.losses.map(finite) }];
  if (s.evals.length) {
    const ev = [...s.evals].sort((a, b) => a.step - b.step);
    traces.push({ type: 'scatter', mode: 'lines+markers', name: 'eval loss', x: ev.map((e) => e.step), y: ev.map((e) => finite(e.loss)) });
  }
  return new Figure(traces, {
    height: 300, margin: { l: 60, r: 20, t: 40, b: 50 }, title: { text: 'loss' }, showlegend: traces.length > 1,
    xaxis: { title: { text: 'step' } }, yaxis: { title: { text: 'loss' } },
  });
}

/**
 * Output metadata that marks a display as live training feedback: `sharelora
 * run` leaves such outputs out of the notebook it saves, where a result table
 * or a final plot.history says what the run did.
 */
export const LIVE_OUTPUT = { sharelora: { live: true } } as const;

function live(fig: Figure): Displayable {
  return {
    async [MIME_BUNDLE](o: RenderOptions): Promise<DisplayOutput> {
      const out = await fig[MIME_BUNDLE](o);
      return { ...out, metadata: { ...out.metadata, ...LIVE_OUTPUT } };
    },
  };
}

export function progressBar(options: ProgressOptions = {}): ProgressCallbacks {
  checkOptions(options);
  const plotEvery = options.plotEvery ?? 20;
  const minInterval = options.minIntervalMs ?? 250;
  const out = options.out ?? process.stdout;
  let s: RunState = { t0: performance.now(), done: 0, tokens: 0, steps: [], losses: [], evals: [] };
  let notebook = false;
  let bar: DisplayHandle | undefined;
  let plotHandle: DisplayHandle | undefined;
  let lastDraw = 0;
  let printEvery = 1;

  const refreshPlot = (png: boolean) => {
    if (plotEvery === 0 || s.steps.length < 2) return;
    const fig = live(lossFigure(s));
    if (plotHandle) plotHandle.update(fig, { png });
    else plotHandle = display(fig, { png, displayId: true });
  };

  return {
    onStart(info) {
      const total = Number.isFinite(info?.totalSteps) && info.totalSteps > 0 ? info.totalSteps : undefined;
      s = { total, t0: performance.now(), done: 0, tokens: 0, steps: [], losses: [], evals: [] };
      notebook = displaySink() !== undefined;
      bar = undefined;
      plotHandle = undefined;
      printEvery = options.printEvery || (total ? Math.max(1, Math.round(total / 20)) : 10);
      if (notebook) {
        bar = display(barView(s, 'starting'), { displayId: true });
        lastDraw = performance.now();
      }
    },
    onStep(rec) {
      s.done += 1;
      s.tokens += Number.isFinite(rec.tokens) ? rec.tokens : 0;
      s.loss = rec.loss;
      s.steps.push(rec.step);
      s.losses.push(rec.loss);
      if (rec.evalLoss !== undefined && Number.isFinite(rec.evalLoss) && !s.evals.some((e) => e.step === rec.step)) {
        s.evals.push({ step: rec.step, loss: rec.evalLoss });
      }
      const last = s.total !== undefined && s.done >= s.total;
      if (notebook) {
        const now = performance.now();
        if (now - lastDraw >= minInterval || last) {
          lastDraw = now;
          (bar ??= display(barView(s), { displayId: true })).update(barView(s));
        }
        if (plotEvery > 0 && s.done % plotEvery === 0) refreshPlot(false);
      } else if (s.done % printEvery === 0 || last || s.done === 1) {
        out.write(`${summaryLine(s)}\n`);
      }
    },
    onEval(e) {
      if (!s.evals.some((x) => x.step === e.step)) s.evals.push({ step: e.step, loss: e.evalLoss });
      const metrics = Object.entries(e.metrics ?? {}).map(([k, v]) => ` · ${k} ${formatNumber(v)}`).join('');
      if (!notebook) out.write(`eval @ step ${e.step}: loss ${formatNumber(e.evalLoss)}${metrics}\n`);
    },
    onEnd(info) {
      const status = info?.interrupted ? `interrupted after ${s.done} steps` : 'done';
      if (notebook) {
        (bar ??= display(barView(s), { displayId: true })).update(barView(s, status));
        // The static PNG is for the saved notebook; after an interrupt the user wants control back first.
        refreshPlot(!info?.interrupted);
      } else {
        out.write(`${status === 'done' ? 'done' : status}: ${summaryLine(s)}\n`);
      }
    },
  };
}
