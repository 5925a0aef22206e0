/**
 * GEMM sweep: every matrix product of a GPT-2-small LoRA step (batch 8 ×
 * 256), timed on the GPU (timestamp queries through tf.time) for each tile
 * of our WGSL GEMM and for tfjs's own webgpu matmul, in one process.
 *   node dist/bench/gemm.js '{"reps":5}'
 *   node dist/bench/gemm.js '{"reps":5,"notebook":true}'   # the notebook-scale step's products (6 layers, 32 × 128)
 *   node dist/bench/gemm.js '{"tiles":["lib","128x128","128x128un","128x128@s2"]}'   # lib: the library's own choice; @sS: S K-slices
 *   node dist/bench/gemm.js '{"occupancy":true}'   # how many workgroups of each tile an SM runs at once (below)
 */
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../src/index.js';
import { registerKernels, tfjsBatchMatMul, chooseTile, nameOfTile, tileNames } from '../src/backend/webgpu/index.js';
import { tileNamed } from '../src/backend/webgpu/gemm.js';
import { flags } from '../src/backend/flags.js';
import { registerGemmVariants } from './gemm-variants.js';

export interface GemmShape { name: string; M: number; N: number; K: number; ta: boolean; tb: boolean; batch: number; perStep: number }

/** GPT-2 small, N tokens, C wide, vocab V, 12 layers, heads of 64 over T. */
export function gpt2Shapes(N = 2048, C = 768, V = 50257, L = 12, T = 256, H = 12, r = 8): GemmShape[] {
  const BH = (N / T) * H, D = C / H;
  return [
    { name: 'c_attn fwd', M: N, N: 3 * C, K: C, ta: false, tb: false, batch: 1, perStep: L },
    { name: 'c_attn dx', M: N, N: C, K: 3 * C, ta: false, tb: true, batch: 1, perStep: L },
    { name: 'attn.c_proj fwd', M: N, N: C, K: C, ta: false, tb: false, batch: 1, perStep: L },
    { name: 'attn.c_proj dx', M: N, N: C, K: C, ta: false, tb: true, batch: 1, perStep: L },
    { name: 'c_fc fwd', M: N, N: 4 * C, K: C, ta: false, tb: false, batch: 1, perStep: L },
    { name: 'c_fc dx', M: N, N: C, K: 4 * C, ta: false, tb: true, batch: 1, perStep: L },
    { name: 'mlp.c_proj fwd', M: N, N: C, K: 4 * C, ta: false, tb: false, batch: 1, perStep: L },
    { name: 'mlp.c_proj dx', M: N, N: 4 * C, K: C, ta: false, tb: true, batch: 1, perStep: L },
    { name: 'lm_head fwd', M: N, N: V, K: C, ta: false, tb: true, batch: 1, perStep: 1 },
    { name: 'lm_head dx', M: N, N: C, K: V, ta: false, tb: false, batch: 1, perStep: 1 },
    { name: 'attn QK^T (x2)', M: T, N: T, K: D, ta: false, tb: true, batch: BH, perStep: 2 * L },
    { name: 'attn PV', M: T, N: D, K: T, ta: false, tb: false, batch: BH, perStep: L },
    { name: 'attn dP=dO V^T', M: T, N: T, K: D, ta: false, tb: true, batch: BH, perStep: L },
    { name: 'attn dQ=dS K', M: T, N: D, K: T, ta: false, tb: false, batch: BH, perStep: L },
    { name: 'attn dK,dV (T.N)', M: T, N: D, K: T, ta: true, tb: false, batch: BH, perStep: 2 * L },
    { name: 'lora u=xA^T', M: N, N: r, K: C, ta: false, tb: true, batch: 1, perStep: L },
    { name: 'lora g=dyB', M: N, N: r, K: 3 * C, ta: false, tb: false, batch: 1, perStep: L },
    { name: 'lora dA=g^T x', M: r, N: C, K: N, ta: true, tb: false, batch: 1, perStep: L },
    { name: 'lora dB=dy^T u', M: 3 * C, N: r, K: N, ta: true, tb: false, batch: 1, perStep: L },
  ];
}

/** GPU time of one call of f, the mean over reps after one call that compiles and warms */
async function kernelMs(f: () => tf.Tensor, reps: number): Promise<number> {
  tf.dispose(f());
  const t = await tf.time(() => { for (let i = 0; i < reps; i++) tf.dispose(f()); });
  return (t.kernelMs as number) / reps;
}

export interface GemmRow { shape: string; M: number; N: number; K: number; batch: number; perStep: number; gflop: number; ms: Record<string, number>; auto: string; best: string }

export async function runGemmSweep(o: { reps?: number; tiles?: string[]; dawnFlags?: string[]; small?: boolean; notebook?: boolean } = {}): Promise<{ device: string; rows: GemmRow[]; stepMs: Record<string, number>; dawnFlags?: string[] }> {
  if (o.dawnFlags?.length) {
    const webgpu = await import('webgpu') as unknown as { create(f: string[]): unknown; globals: object };
    Object.assign(globalThis, webgpu.globals);
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: webgpu.create(o.dawnFlags) }, configurable: true, writable: true });
  }
  const info = await useBackend('webgpu');
  registerKernels();
  registerGemmVariants();
  const reps = o.reps ?? 5;
  const tiles = o.tiles ?? tileNames();
  const rows: GemmRow[] = [];
  const stepMs: Record<string, number> = { auto: 0, best: 0, tfjs: 0 };
  const failed = new Set<string>();
  // notebook scale: bench/run.ts's notebook suite (GPT-2 shape 256 wide, 8 heads, vocabulary 8257, 32 × 128 tokens, 6 layers)
  const shapes = o.small ? gpt2Shapes(256, 128, 1000, 2, 64, 4) : o.notebook ? gpt2Shapes(4096, 256, 8257, 6, 128, 8) : gpt2Shapes();
  for (const s of shapes) {
    const aShape = [...(s.batch > 1 ? [s.batch] : []), ...(s.ta ? [s.K, s.M] : [s.M, s.K])];
    const bShape = [...(s.batch > 1 ? [s.batch] : []), ...(s.tb ? [s.N, s.K] : [s.K, s.N])];
    const a = tf.randomUniform(aShape, -1, 1), b = tf.randomUniform(bShape, -1, 1);
    const gflop = (2 * s.M * s.N * s.K * s.batch) / 1e9;
    const ms: Record<string, number> = {};
    const time = (f: () => tf.Tensor) => kernelMs(f, reps);
    for (const tile of tiles) {
      // 'lib': no tile attribute, so the library's own choice (its rule, split-K, the thin kernel) runs;
      // NAME@sS: the tile NAME over S K-slices
      const m = /^(.+)@s(\d+)$/.exec(tile);
      const attrs = tile === 'lib' ? {} : m ? { tile: m[1], splitK: +m[2] } : { tile };
      // a tile this device cannot run (over its workgroup memory) is NaN in its column, not the end of the sweep
      try {
        ms[tile] = await time(() => tf.engine().runKernel('ShareLoraMatMul', { a, b }, { transA: s.ta, transB: s.tb, ...attrs } as never) as tf.Tensor);
      } catch (e) {
        ms[tile] = NaN;
        if (!failed.has(tile)) console.log(`# ${tile}: ${(e as Error).message}`);
        failed.add(tile);
      }
    }
    const orig = tfjsBatchMatMul();
    if (orig) {
      ms.tfjs = await time(() => {
        const out = orig.kernelFunc({ inputs: { a, b }, attrs: { transposeA: s.ta, transposeB: s.tb }, backend: tf.backend() } as never) as tf.TensorInfo;
        return tf.engine().makeTensorFromTensorInfo(out);
      });
    }
    const autoTile = chooseTile(s.M, s.N, s.batch, s.K);
    const auto = nameOfTile(autoTile)!;
    const best = tiles.reduce((x, y) => (ms[y] < ms[x] || Number.isNaN(ms[x]) ? y : x));
    rows.push({ shape: s.name, M: s.M, N: s.N, K: s.K, batch: s.batch, perStep: s.perStep, gflop, ms, auto, best });
    stepMs.auto += s.perStep * (ms[auto] ?? NaN);
    stepMs.best += s.perStep * ms[best];
    stepMs.tfjs += s.perStep * (ms.tfjs ?? NaN);
    tf.dispose([a, b]);
  }
  return { device: info.device, rows, stepMs, dawnFlags: o.dawnFlags };
}

/**
 * How many workgroups of a tile one SM runs at once, read from time against workload: products of w·SMs tiles
 * (w = 0.5 … 4) of one tile and one K. With one resident workgroup an SM, w = 1 and w = 2 take two rounds' time
 * apart; with two, they take about the same. splitk.ts's wave model assumes one (SHARELORA_GEMM_OCCUPANCY), and the
 * session-12 sweep fits either that or two at a lower rate each (bench/NOTES.md entry 30): this settles it.
 */
export async function runOccupancyProbe(o: { reps?: number; tiles?: string[]; K?: number } = {}): Promise<{ device: string; sms: number; rows: Array<{ tile: string; waves: number; tiles: number; M: number; N: number; K: number; ms: number; msPerWave: number; tflops: number }> }> {
  const info = await useBackend('webgpu');
  registerKernels();
  const reps = o.reps ?? 10, K = o.K ?? 768;
  const sms = flags.gpuSms;
  const rows = [];
  for (const tile of o.tiles ?? ['128x128', '64x64t4']) {
    const t = tileNamed(tile, 'the occupancy probe');
    // N: 12 column tiles (an H100's 132 SMs are 11 × 12); M: as many row tiles as w·SMs needs
    const N = 12 * t.BN;
    for (const w of [0.5, 1, 1.5, 2, 3, 4]) {
      const M = Math.max(1, Math.round((w * sms) / 12)) * t.BM;
      const a = tf.randomUniform([M, K], -1, 1), b = tf.randomUniform([K, N], -1, 1);
      const f = () => tf.engine().runKernel('ShareLoraMatMul', { a, b }, { transA: false, transB: false, tile, splitK: 1 } as never) as tf.Tensor;
      const ms = await kernelMs(f, reps);
      const n = (M / t.BM) * 12;
      rows.push({ tile, waves: n / sms, tiles: n, M, N, K, ms, msPerWave: ms / (n / sms), tflops: (2 * M * N * K) / ms / 1e9 });
      tf.dispose([a, b]);
    }
  }
  return { device: info.device, sms, rows };
}

if (process.argv[1] && /gemm\.js$/.test(process.argv[1])) {
  const o = process.argv[2] ? JSON.parse(process.argv[2]) : {};
  (o.occupancy ? runOccupancyProbe(o) : runGemmSweep(o)).then((r) => {
    if ('sms' in r) for (const x of r.rows) console.log(`${x.tile.padEnd(8)} ${x.waves.toFixed(2).padStart(5)} waves (${String(x.tiles).padStart(4)} tiles, ${x.M} x ${x.N} x ${x.K}): ${x.ms.toFixed(3)} ms, ${x.msPerWave.toFixed(3)} ms a wave, ${x.tflops.toFixed(1)} TFLOP/s`);
    process.stdout.write(`@@RESULT ${JSON.stringify(r)}\n`);
    process.exit(0);
  }, (e) => { process.stdout.write(`@@RESULT ${JSON.stringify({ error: String(e?.message ?? e) })}\n`); process.exit(0); });
}
