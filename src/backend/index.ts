/**
 * Backend choice. The library only calls tfjs-core, so any registered
 * backend runs the same code; this file only decides which one and sets it up.
 */
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's gradients and chained ops (x.reshape(…)), which its Node bundle leaves out; built
// from tfjs-core by scripts/bundle-tfjs-registrations.mjs (no @tensorflow/tfjs union package).
import './tfjs-registrations.js';
import { closest } from '../util/options.js';
import { flags } from './flags.js';
import { patchWasmIdentity } from './wasm-identity.js';
import { patchWasmMatMul } from './wasm-matmul.js';
import { registerWasmSegmentSum } from './wasm-segment-sum.js';

const require = createRequire(import.meta.url);
// PROD silences tfjs's "install tfjs-node" banner, which is wrong advice on machines where it cannot install.
tf.env().set('PROD', true);

export type BackendName = 'auto' | 'tfjs-node-gpu' | 'tfjs-node' | 'webgpu' | 'wasm' | 'cpu';
export interface BackendInfo { name: Exclude<BackendName, 'auto'>; device: string }

export class BackendUnavailable extends Error {
  constructor(name: string, why: string, how: string) {
    super(`backend "${name}" is not available: ${why}. ${how}`);
    this.name = 'BackendUnavailable';
  }
}

let current: BackendInfo | undefined;
let webgpuDevice: string | undefined;

async function tryNode(pkg: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node'): Promise<BackendInfo> {
  try {
    require(pkg);
  } catch (e) {
    throw new BackendUnavailable(pkg, `the package ${pkg} is not installed or failed to load (${(e as Error).message.split('\n')[0]})`,
      `Install it with \`npm install ${pkg}@4.22.0\` (it downloads libtensorflow${pkg.endsWith('gpu') ? ' and needs CUDA 11.8 + cuDNN 8' : ''}).`);
  }
  await tf.setBackend('tensorflow');
  return { name: pkg === '@tensorflow/tfjs-node-gpu' ? 'tfjs-node-gpu' : 'tfjs-node', device: pkg.endsWith('gpu') ? 'CUDA (libtensorflow)' : 'CPU (libtensorflow)' };
}

/** navigator.gpu from Dawn; must exist before tfjs-backend-webgpu is first imported. */
async function tryWebGPU(): Promise<BackendInfo> {
  const how = 'WebGPU needs a GPU adapter through Dawn: an NVIDIA/AMD/Intel Vulkan driver, or Mesa lavapipe (Debian bookworm-backports `mesa-vulkan-drivers`) on a CPU.';
  if (!(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) {
    let webgpu: { create: (flags: string[]) => unknown; globals: Record<string, unknown> };
    try {
      webgpu = await import('webgpu') as never;
    } catch (e) {
      throw new BackendUnavailable('webgpu', `the webgpu package failed to load (${(e as Error).message})`, 'Run `npm install webgpu@0.6.2`.');
    }
    Object.assign(globalThis, webgpu.globals);
    // SHARELORA_WEBGPU_ROBUSTNESS=0 turns off Dawn's bounds clamping on every buffer access (−20% GEMM time on
    // the H200, bench/NOTES.md). Off only on request: the clamps are what keep an out-of-range index from reading
    // another buffer; our kernels and tfjs's check their own bounds, but that is a promise, not a guarantee.
    const { dawnFlags } = await import('./webgpu/device.js');
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: webgpu.create(dawnFlags()) }, configurable: true, writable: true });
  }
  const gpu = (globalThis as unknown as { navigator: { gpu: { requestAdapter(): Promise<{ info?: { vendor?: string; description?: string; device?: string; architecture?: string } } | null> } } }).navigator.gpu;
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new BackendUnavailable('webgpu', 'no GPU adapter was found', how);
  const info = adapter.info ?? {};
  webgpuDevice = [info.vendor, info.description || info.device || info.architecture].filter(Boolean).join(' ') || 'WebGPU adapter';
  await import('@tensorflow/tfjs-backend-webgpu');
  await (await import('./webgpu/device.js')).registerDeviceFactory();
  if (!(await tf.setBackend('webgpu'))) throw new BackendUnavailable('webgpu', 'tfjs-backend-webgpu failed to initialise', how);
  // our fused kernels (src/backend/webgpu), part of the package: ops.ts imports them statically too
  (await import('./webgpu/register.js')).registerKernels();
  return { name: 'webgpu', device: webgpuDevice };
}

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader/i;
let probed: { adapter: string | undefined } | undefined;

/**
 * The adapter Dawn would give, asked in a child process: Dawn writes warnings
 * straight to file descriptor 2 when it enumerates adapters (lavapipe: two
 * "… artificially reduced from 1000000 to 16 …" lines), which no JavaScript
 * can hold back, on every start, even when auto then settles on wasm. Only a
 * hardware adapter is worth opening in this process. SHARELORA_DAWN_LOG=1
 * lets the child's messages through. Undefined when there is none or the check failed.
 */
function probeAdapter(): string | undefined {
  probed ??= { adapter: askDawn() };
  return probed.adapter;
}

function askDawn(): string | undefined {
  let url: string;
  try {
    url = pathToFileURL(require.resolve('webgpu')).href;
  } catch {
    return undefined;
  }
  const script = `const w = await import(${JSON.stringify(url)}); const a = await w.create([]).requestAdapter();
    const i = a ? a.info ?? {} : undefined; process.stdout.write(JSON.stringify(i ? [i.vendor, i.description || i.device || i.architecture].filter(Boolean).join(' ') || 'WebGPU adapter' : null)); process.exit(0);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', flags.dawnLog ? 'inherit' : 'ignore'],
  });
  try {
    return r.status === 0 ? (JSON.parse(r.stdout) as string | null) ?? undefined : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Emscripten's Node glue in tfjs-backend-wasm adds an uncaughtException handler that rethrows from
 * inside the handler and an unhandledRejection handler that throws: Node then ends every later
 * uncaught error of the program with exit status 7 and a stack through `throw ex`, not the error's
 * own report and status 1. tfjs means to remove them on dispose, but its filter keeps none. Removed
 * here, when each module starts: they only serve Emscripten programs that call exit(), which tfjs does not.
 */
async function withoutEmscriptenHandlers<T>(start: () => Promise<T>): Promise<T> {
  const events = ['uncaughtException', 'unhandledRejection'] as const;
  const listeners = (e: string) => process.listeners(e as 'uncaughtException') as unknown[];
  const before = new Map(events.map((e) => [e, new Set(listeners(e))]));
  try {
    return await start();
  } finally {
    for (const e of events) {
      for (const l of listeners(e)) {
        const src = String(l);
        if (!before.get(e)!.has(l) && (/ExitStatus/.test(src) || /^function\s*\(reason\)\s*\{\s*throw reason;?\s*\}$/.test(src))) process.removeListener(e, l as never);
      }
    }
  }
}

async function tryWasm(): Promise<BackendInfo> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
  } catch (e) {
    throw new BackendUnavailable('wasm', `@tensorflow/tfjs-backend-wasm failed to load (${(e as Error).message})`, 'Run `npm install @tensorflow/tfjs-backend-wasm@4.22.0`.');
  }
  if (!(await withoutEmscriptenHandlers(() => tf.setBackend('wasm')))) throw new BackendUnavailable('wasm', 'the WebAssembly module failed to initialise', 'Check that Node >= 20 can load .wasm files from node_modules.');
  patchWasmMatMul();
  patchWasmIdentity();
  registerWasmSegmentSum();
  return { name: 'wasm', device: 'CPU (WebAssembly, SIMD)' };
}

async function tryCpu(): Promise<BackendInfo> {
  await tf.setBackend('cpu');
  return { name: 'cpu', device: 'CPU (plain JavaScript)' };
}

const TRIES: Record<Exclude<BackendName, 'auto'>, () => Promise<BackendInfo>> = {
  'tfjs-node-gpu': () => tryNode('@tensorflow/tfjs-node-gpu'),
  'tfjs-node': () => tryNode('@tensorflow/tfjs-node'),
  webgpu: tryWebGPU,
  wasm: tryWasm,
  cpu: tryCpu,
};

/**
 * Pick and initialise a backend. 'auto' tries tfjs-node-gpu, tfjs-node,
 * webgpu (a real adapter, not a CPU fallback), wasm, then cpu.
 * @example const { name, device } = await useBackend();
 */
export async function useBackend(name: BackendName | string = flags.backend): Promise<BackendInfo> {
  if (name !== 'auto') {
    // own keys only: 'constructor' or 'toString' must not reach Object.prototype
    const tryIt = Object.hasOwn(TRIES, name) ? TRIES[name as Exclude<BackendName, 'auto'>] : undefined;
    if (!tryIt) {
      const names = ['auto', ...Object.keys(TRIES)];
      throw new BackendUnavailable(String(name), `unknown backend name; did you mean "${closest(String(name), names)}"?`, `Choose one of: ${names.join(', ')}.`);
    }
    current = await tryIt();
    return current;
  }
  for (const n of ['tfjs-node-gpu', 'tfjs-node', 'webgpu', 'wasm'] as const) {
    // A software WebGPU adapter (lavapipe) is slower than wasm for training; look before opening Dawn here.
    if (n === 'webgpu' && !(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) {
      const adapter = probeAdapter();
      if (adapter === undefined || SOFTWARE_ADAPTER.test(adapter)) continue;
    }
    try {
      const info = await TRIES[n]();
      if (n === 'webgpu' && SOFTWARE_ADAPTER.test(info.device)) continue;
      current = info;
      return current;
    } catch {
      // fall through to the next candidate
    }
  }
  current = await tryCpu();
  return current;
}

export function backendInfo(): BackendInfo | undefined {
  return current;
}

type AnyBackend = Record<string, unknown>;

/**
 * Makes a dead backend instance inert: tfjs still holds it for every tensor
 * created on it, and disposing those must not throw, while reading one must
 * say why it is gone instead of failing inside Dawn or a dead wasm module.
 */
function retire(dead: AnyBackend | undefined, why: string): void {
  if (!dead) return;
  const gone = () => { throw new Error(`this tensor lived on the ${why}; re-create it (re-run the cell that made it)`); };
  Object.assign(dead, {
    dispose: () => {}, disposeData: () => true, read: async () => gone(), readSync: gone, readToGPU: gone,
    incRef: () => {}, decRef: () => {}, refCount: () => 0, numDataIds: () => 0,
  });
  // Drop the dead module/device so its memory (up to 4 GB of wasm heap) can be collected once old tensors are.
  for (const k of ['wasm', 'device', 'queue', 'bufferManager', 'dataIdMap', 'tensorMap']) if (k in dead) dead[k] = undefined;
}

/**
 * Replaces a webgpu or wasm backend whose device was lost or whose
 * WebAssembly module aborted with a fresh instance of the same backend, made
 * by tfjs's own factory (a new GPU device; a new wasm module and heap).
 * Tensors of the old instance are gone: disposing them is harmless, reading
 * them throws an error naming `why`. Throws when no fresh instance starts.
 * @returns the new backend.
 */
export async function resetBackend(name: 'webgpu' | 'wasm', why: string): Promise<BackendInfo> {
  const factory = tf.findBackendFactory(name);
  if (!factory) throw new BackendUnavailable(name, 'it was never registered', 'Call useBackend() first.');
  const registry = (tf.engine() as unknown as { registry: Record<string, AnyBackend>; registryFactory: Record<string, { priority: number }> });
  const priority = registry.registryFactory[name]?.priority ?? (name === 'webgpu' ? 3 : 2);
  retire(registry.registry[name], why);
  tf.removeBackend(name);
  tf.registerBackend(name, factory, priority);
  current = await TRIES[name]();
  return current;
}

export type { GpuHealth } from './webgpu/errors.js';

/**
 * GPU errors nobody captured (out of memory, validation) and device loss seen
 * by this process, once the GPU has finished its submitted work; always none
 * off webgpu. A run that met one has read invalid buffers (zeros), so its
 * metrics are not results (the run cache refuses them).
 */
export async function gpuHealth(): Promise<import('./webgpu/errors.js').GpuHealth> {
  if (tf.getBackend() !== 'webgpu') return { errors: 0 };
  const [{ gpuHealth: health }, { webgpuBackend }] = await Promise.all([import('./webgpu/errors.js'), import('./webgpu/dispatch.js')]);
  return health(webgpuBackend());
}

/**
 * Throws if the GPU reported an error or was lost (gpuHealth): `where` names
 * the caller, `consequence` what is not kept or returned because of it.
 */
export async function assertGpuHealthy(where: string, consequence: string): Promise<void> {
  const h = await gpuHealth();
  if (h.errors === 0 && !h.lost) return;
  throw new Error(`${where}: the GPU reported ${h.lost ? `the device lost (${h.lost})` : `${h.errors} error(s) (first: ${h.first})`} in this process, so ${consequence} `
    + '(a buffer that failed to allocate reads back zeros). Restart the kernel or process, with fewer processes on the GPU or a lower '
    + 'SHARELORA_WEBGPU_POOL_MIB, and train again.');
}
