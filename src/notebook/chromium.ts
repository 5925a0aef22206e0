/**
 * Static PNG/SVG export of plotly figures through a system headless Chromium
 * (Debian `chromium` or `chromium-headless-shell`) driven by playwright-core.
 * One browser with plotly.js already parsed is shared by every export, since
 * launching and parsing the 4.8 MB bundle costs seconds while a render costs
 * tens of milliseconds.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { flags } from '../backend/flags.js';
import type { FigureJSON } from './figure-json.js';

const require = createRequire(import.meta.url);

/** Checked in order; SHARELORA_CHROMIUM overrides. */
export const CHROMIUM_CANDIDATES = [
  '/usr/bin/chromium-headless-shell',
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome-stable',
  '/usr/bin/google-chrome',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
];

const LAUNCH_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];

export class ImageExportUnavailable extends Error {
  constructor(why: string) {
    super(`static image export is unavailable: ${why}. Install a headless Chromium (Debian: \`apt-get install chromium\` or \`chromium-headless-shell\`) `
      + 'and the optional dependency playwright-core, or set SHARELORA_CHROMIUM to a Chrome/Chromium binary. plot.save(fig, "x.html") needs neither.');
    this.name = 'ImageExportUnavailable';
  }
}

export function findChromium(): string | undefined {
  const env = flags.chromium;
  if (env) return existsSync(env) ? env : undefined;
  return CHROMIUM_CANDIDATES.find((p) => existsSync(p));
}

interface PageLike {
  evaluate<R, A>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R>;
  setContent(html: string): Promise<void>;
  addScriptTag(opts: { path: string }): Promise<unknown>;
}
interface BrowserLike {
  newPage(): Promise<PageLike>;
  close(): Promise<void>;
  on(event: 'disconnected', fn: () => void): void;
}

let browser: Promise<{ browser: BrowserLike; page: PageLike }> | undefined;
let idleTimer: NodeJS.Timeout | undefined;
let idleMs = 2000;
const RENDER_TIMEOUT_MS = 30_000;

/**
 * How long the browser stays up after the last export. Scripts want it short
 * (a live browser keeps Node from exiting); the kernel sets it long.
 */
export function setBrowserIdleTimeout(ms: number): void {
  idleMs = ms;
}

async function launch(): Promise<{ browser: BrowserLike; page: PageLike }> {
  const executablePath = findChromium();
  if (!executablePath) {
    throw new ImageExportUnavailable(flags.chromium
      ? `SHARELORA_CHROMIUM=${flags.chromium} does not exist`
      : `no Chromium found at ${CHROMIUM_CANDIDATES.slice(0, 3).join(', ')}`);
  }
  let pw: { chromium: { launch(o: object): Promise<BrowserLike> } };
  try {
    pw = require('playwright-core');
  } catch {
    throw new ImageExportUnavailable('the optional dependency playwright-core is not installed (npm install --save-exact playwright-core@1.65.1)');
  }
  // Playwright's default SIGINT/SIGTERM/SIGHUP handlers kill the browser and then exit the whole
  // process: in the kernel an interrupt would end the kernel. Our own exit paths close the browser.
  const b = await pw.chromium.launch({
    executablePath, args: LAUNCH_ARGS, timeout: RENDER_TIMEOUT_MS, handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false,
  });

  try {
    const page = await b.newPage();
    await page.setContent('<!DOCTYPE html><html><body></body></html>');
    await page.addScriptTag({ path: require.resolve('plotly.js-dist-min/plotly.min.js') });
    return { browser: b, page };
  } catch (e) {
    await b.close().catch(() => {});
    throw e;
  }
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(`${what} took longer than ${RENDER_TIMEOUT_MS / 1000}s`)), RENDER_TIMEOUT_MS); }),
  ]).finally(() => clearTimeout(t));
}

export interface ImageOptions {
  format: 'png' | 'svg';
  width?: number;
  height?: number;
  scale?: number;
}

/** PNG as base64 (no data: prefix) or SVG markup. */
export async function renderFigureImage(fig: FigureJSON, opts: ImageOptions): Promise<string> {
  clearTimeout(idleTimer);
  if (!browser) {
    const p = launch();
    browser = p;
    // A browser that dies (killed, crashed) is relaunched on the next export instead of failing forever.
    p.then((x) => x.browser.on('disconnected', () => { if (browser === p) browser = undefined; }), () => {});
  }
  let session: { page: PageLike };
  try {
    session = await withTimeout(browser, 'launching Chromium');
  } catch (e) {
    browser = undefined;
    throw e;
  }
  const width = opts.width ?? (typeof fig.layout.width === 'number' ? fig.layout.width : 720);
  const height = opts.height ?? (typeof fig.layout.height === 'number' ? fig.layout.height : 400);
  try {
    const url = await withTimeout(session.page.evaluate(async (a: { fig: FigureJSON; format: string; width: number; height: number; scale: number }) => {
      const P = (globalThis as unknown as { Plotly: Record<string, (...x: unknown[]) => Promise<string>> }).Plotly;
      const doc = (globalThis as unknown as { document: { createElement(t: string): { remove(): void }; body: { appendChild(e: unknown): void } } }).document;
      const gd = doc.createElement('div');
      doc.body.appendChild(gd);
      try {
        await P.newPlot!(gd, a.fig.data, { ...a.fig.layout, width: a.width, height: a.height }, { staticPlot: true });
        return await P.toImage!(gd, { format: a.format, width: a.width, height: a.height, scale: a.scale });
      } finally {
        P.purge!(gd);
        gd.remove();
      }
    }, { fig, format: opts.format, width, height, scale: opts.scale ?? 1 }), 'rendering a figure');
    if (opts.format === 'png') return url.slice(url.indexOf(',') + 1);
    const body = url.slice(url.indexOf(',') + 1);
    return url.startsWith('data:image/svg+xml;base64,') ? Buffer.from(body, 'base64').toString('utf8') : decodeURIComponent(body);
  } finally {
    scheduleClose();
  }
}

function scheduleClose(): void {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => { void closeBrowser(); }, idleMs);
}

/** Stop the shared browser now (tests and scripts that want to exit promptly). */
export async function closeBrowser(): Promise<void> {
  clearTimeout(idleTimer);
  const b = browser;
  browser = undefined;
  if (b) await b.then((s) => s.browser.close(), () => {});
}
