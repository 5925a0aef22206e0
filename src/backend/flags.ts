/**
 * Every SHARELORA_* environment switch the library reads, read here and
 * nowhere else, so one file says which exist, what each accepts and who reads
 * it. The benchmark's own switches live in bench/flags.ts, read through the
 * readers exported here. README.md ("Switches", the table) lists both; a
 * test keeps them in step.
 *
 * Most are read once, on first use: they configure the process, and a
 * benchmark variant or the notebook runner sets them in a child's
 * environment. Those marked "on access" are re-read every time because they
 * change while a process runs (the notebook runner sets SHARELORA_BACKEND for
 * its cells; a cell may turn PNGs off; tests set SHARELORA_GEMM_TILE after
 * import) or because a secret should not outlive its use (SHARELORA_QUEUE_KEY).
 *
 * An empty value means unset, as it always did. A value that cannot be
 * meant throws an error naming the variable and what it accepts, instead of
 * being read as the default.
 *
 * No imports: the kernel, the CLI and the bench read this before any
 * backend loads.
 */

export function raw(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

function invalid(name: string, got: string, expected: string): Error {
  return new Error(`${name} must be ${expected}; got ${JSON.stringify(got)}`);
}

export function onOff(name: string, fallback: boolean): boolean {
  const v = raw(name);
  if (v === undefined) return fallback;
  if (v !== '0' && v !== '1') throw invalid(name, v, '0 (off) or 1 (on)');
  return v === '1';
}

function integer(name: string, fallback: number, min: 0 | 1, what: string): number {
  const v = raw(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw invalid(name, v, `a ${min ? 'positive' : 'non-negative'} integer (${what})`);
  return n;
}

function oneOf<T extends string>(name: string, values: readonly T[], fallback: T): T {
  const v = raw(name);
  if (v === undefined) return fallback;
  if (!(values as readonly string[]).includes(v)) throw invalid(name, v, `one of ${values.join(', ')}`);
  return v as T;
}

/** Read on first use, then kept; a failed read is not kept, so it throws again where next used. */
export function once<T>(read: () => T): () => T {
  let done = false;
  let value: T;
  return () => {
    if (!done) { value = read(); done = true; }
    return value;
  };
}

const webgpuKernels = once(() => onOff('SHARELORA_WEBGPU_KERNELS', true));
const webgpuMatmul = once(() => oneOf('SHARELORA_WEBGPU_MATMUL', ['sharelora', 'tfjs'] as const, 'sharelora'));
const webgpuDevice = once(() => oneOf('SHARELORA_WEBGPU_DEVICE', ['sharelora', 'tfjs'] as const, 'sharelora'));
const webgpuValidation = once(() => onOff('SHARELORA_WEBGPU_VALIDATION', true));
const webgpuRobustness = once(() => onOff('SHARELORA_WEBGPU_ROBUSTNESS', true));
const webgpuFlashAttention = once(() => onOff('SHARELORA_WEBGPU_FLASH_ATTENTION', true));
const webgpuFlashBackward = once(() => onOff('SHARELORA_WEBGPU_FLASH_BACKWARD', false));
const webgpuFlashBlock = once(() => onOff('SHARELORA_WEBGPU_FLASH_BLOCK', false));
const webgpuFlashParts = once(() => Number(oneOf('SHARELORA_WEBGPU_FLASH_PARTS', ['1', '2', '4'] as const, '2')));
const webgpuCausalSkip = once(() => onOff('SHARELORA_WEBGPU_CAUSAL_SKIP', true));
const webgpuFusedLN = once(() => onOff('SHARELORA_WEBGPU_FUSED_LN', false));
const webgpuFlatStream = once(() => onOff('SHARELORA_WEBGPU_FLAT_STREAM', false));
const webgpuMultiTensor = once(() => onOff('SHARELORA_WEBGPU_MULTI_TENSOR', false));
const webgpuBindGroupCache = once(() => onOff('SHARELORA_WEBGPU_BINDGROUP_CACHE', true));
const webgpuHostCache = once(() => onOff('SHARELORA_WEBGPU_HOST_CACHE', true));
const webgpuSubmitBatch = once(() => integer('SHARELORA_WEBGPU_SUBMIT_BATCH', 0, 0, 'dispatches per submit; 0 leaves tfjs\'s default'));
const gpuSms = once(() => integer('SHARELORA_GPU_SMS', 132, 1, 'the GPU\'s streaming multiprocessors or compute units'));
const printWgsl = once(() => raw('SHARELORA_PRINT_WGSL'));
const lightClone = once(() => onOff('SHARELORA_LIGHT_CLONE', true));
const eagerRelease = once(() => onOff('SHARELORA_EAGER_RELEASE', true));
const dawnLog = once(() => onOff('SHARELORA_DAWN_LOG', false));
const interruptGraceMs = once(() => integer('SHARELORA_INTERRUPT_GRACE_MS', 2000, 0, 'milliseconds'));
const runnerBackend = once(() => raw('SHARELORA_RUNNER_BACKEND') ?? 'auto');
const gemmSplitK = once(() => onOff('SHARELORA_GEMM_SPLITK', true));
const gemmOccupancy = once(() => integer('SHARELORA_GEMM_OCCUPANCY', 1, 1, 'workgroups of the 128×128 GEMM tile one SM runs at once'));
const gemmUnroll = once(() => onOff('SHARELORA_GEMM_UNROLL', true));
const gemmThinWaves = once(() => integer('SHARELORA_GEMM_THIN_WAVES', 8, 1, 'workgroups an SM the thin LoRA products split K to reach'));
const gradStatsSplit = once(() => integer('SHARELORA_GRAD_STATS_SPLIT', 4096, 0, 'elements above which a gradient\'s statistics take two passes'));
const gemmWideBK = once(() => oneOf('SHARELORA_GEMM_WIDE_BK', ['auto', '16', '32'] as const, 'auto'));
const webgpuGeluGemm = once(() => onOff('SHARELORA_WEBGPU_GELU_GEMM', false));
const webgpuVec4Elementwise = once(() => onOff('SHARELORA_WEBGPU_VEC4_ELEMENTWISE', true));
const gemmPlan = once(() => oneOf('SHARELORA_GEMM_PLAN', ['wide', 'fill', 'rule'] as const, 'wide'));
const gemmRule = once(() => oneOf('SHARELORA_GEMM_RULE', ['wave', 'waves2', 'efficiency'] as const, 'efficiency'));
const webgpuPoolMiB = once(() => integer('SHARELORA_WEBGPU_POOL_MIB', 2048, 0, 'MiB of free buffers tfjs\'s webgpu pool may keep; 0: no cap'));
const gemmPretransposeMiB = once(() => integer('SHARELORA_GEMM_PRETRANSPOSE', 4096, 0, 'MiB of transposed copies of frozen weights; 0 turns them off'));

export const flags = {
  // ---- the library: backend choice and the webgpu path

  /** SHARELORA_BACKEND (on access): the backend a bare useBackend() starts; checked by useBackend. Default 'auto'. */
  get backend(): string { return raw('SHARELORA_BACKEND') ?? 'auto'; },
  /** SHARELORA_WEBGPU_KERNELS=0: webgpu on plain tfjs-core ops (the benchmark's in-run baseline). */
  get webgpuKernels(): boolean { return webgpuKernels(); },
  /** SHARELORA_WEBGPU_MATMUL=tfjs: keep tfjs's own webgpu BatchMatMul instead of routing it to our GEMM. */
  get webgpuMatmul(): 'sharelora' | 'tfjs' { return webgpuMatmul(); },
  /** SHARELORA_WEBGPU_DEVICE=tfjs: tfjs's own GPUDevice (no subgroups) and Dawn's default toggles (webgpu/device.ts). */
  get webgpuDevice(): 'sharelora' | 'tfjs' { return webgpuDevice(); },
  /** SHARELORA_WEBGPU_ROBUSTNESS=0: Dawn's bounds clamping off (unsafe; see src/backend/index.ts). */
  get webgpuRobustness(): boolean { return webgpuRobustness(); },
  /** SHARELORA_WEBGPU_VALIDATION=0: Dawn's API validation off (unsafe, less host work per dispatch; webgpu/device.ts). */
  get webgpuValidation(): boolean { return webgpuValidation(); },
  /** SHARELORA_WEBGPU_FLASH_ATTENTION=0: attention's forward as three launches (GEMM, softmax, GEMM) instead of webgpu/flash.ts. */
  get webgpuFlashAttention(): boolean { return webgpuFlashAttention(); },
  /** SHARELORA_WEBGPU_FLASH_BACKWARD=1 (opt-in: slower on the H100, bench/NOTES.md entry 17 and 18 measured): attention's backward as two flash-style kernels (webgpu/flash-backward.ts) where the flash forward ran, instead of six launches with T×T tensors in memory. */
  get webgpuFlashBackward(): boolean { return webgpuFlashBackward(); },
  /** SHARELORA_WEBGPU_FLASH_PARTS=1|2|4 (2): threads a query row in the flash attention forward (webgpu/flash.ts; bench/NOTES.md entry 29). */
  get webgpuFlashParts(): number { return webgpuFlashParts(); },
  /** SHARELORA_WEBGPU_FLASH_BLOCK=1 (opt-in until measured): the flash forward scores a key block first and rescales once a block (bench/NOTES.md entry 29). */
  get webgpuFlashBlock(): boolean { return webgpuFlashBlock(); },
  /** SHARELORA_WEBGPU_CAUSAL_SKIP (default on; 0 turns it off): the causal attention backward's T × T products leave out what lies wholly past the diagonal (webgpu/attention.ts; the same sums, less work; bench/NOTES.md entry 36). */
  get webgpuCausalSkip(): boolean { return webgpuCausalSkip(); },
  /** SHARELORA_WEBGPU_FUSED_LN=1: a residual add and the LayerNorm after it as one kernel each way (ops.addLayerNorm; webgpu/norm.ts); slower on the H100 (bench/NOTES.md entry 14), so off. */
  get webgpuFusedLN(): boolean { return webgpuFusedLN(); },
  /** SHARELORA_WEBGPU_FLAT_STREAM=1 (opt-in: no gain on an H100 with step replay, README's switch table): GPT-2 keeps its residual stream as [B·T, C] rows on our kernels, without the Reshapes around every projection (ops.flatStream). */
  get webgpuFlatStream(): boolean { return webgpuFlatStream(); },
  /** SHARELORA_WEBGPU_MULTI_TENSOR=1 (opt-in: an H100 result not yet settled, README's switch table): the trainer's gradient statistics and AdamW update as one op over all parameters (ops.gradStatsMany, ops.adamwUpdates; webgpu/optim.ts). */
  get webgpuMultiTensor(): boolean { return webgpuMultiTensor(); },
  /** SHARELORA_WEBGPU_ADAMW_INPLACE=0 (on access): AdamW makes new p, m and v tensors each step instead of writing into them (ops.adamwApply; webgpu/optim.ts adamwInPlaceKernel, bench/NOTES.md entry 43). */
  get webgpuAdamwInPlace(): boolean { return onOff('SHARELORA_WEBGPU_ADAMW_INPLACE', true); },
  /** SHARELORA_WEBGPU_REPLAY=0 (on access, read by every fit()): no step replay, every step through tfjs (train/step-replay.ts, webgpu/replay.ts; on by default since bench/NOTES.md entry 17's H100 run). */
  get webgpuReplay(): boolean { return onOff('SHARELORA_WEBGPU_REPLAY', true); },
  /** SHARELORA_WEBGPU_REPLAY_PREPARE=0 (on access): a replayed step's commands are encoded when it is submitted, not ahead of it while the step before runs (webgpu/replay.ts, bench/NOTES.md entry 45). */
  get webgpuReplayPrepare(): boolean { return onOff('SHARELORA_WEBGPU_REPLAY_PREPARE', true); },
  /** SHARELORA_WEBGPU_REPLAY_CHUNK=N (on access; default 0, one command buffer; opt-in until a GPU measures it, bench/NOTES.md entry 44): a replayed step is submitted in command buffers of N, 2N, 4N, … dispatches, so the GPU starts on the first while the host encodes the rest (webgpu/replay.ts). */
  get webgpuReplayChunk(): number { return integer('SHARELORA_WEBGPU_REPLAY_CHUNK', 0, 0, 'dispatches in the first command buffer of a replayed step'); },
  /** SHARELORA_WEBGPU_PIPELINE=1 (on access; opt-in: never yet measured running, bench/NOTES.md entry 42): replayed steps inside fit() submit the update with the clipping coefficient computed on the GPU and read step k's loss while step k+1 runs (train/trainer.ts, webgpu/optim.ts stepControl). */
  get webgpuPipeline(): boolean { return onOff('SHARELORA_WEBGPU_PIPELINE', false); },
  /** SHARELORA_WEBGPU_BINDGROUP_CACHE=0: create every bind group of our kernels afresh (webgpu/dispatch.ts). */
  get webgpuBindGroupCache(): boolean { return webgpuBindGroupCache(); },
  /** SHARELORA_WEBGPU_HOST_CACHE=0: without the host-side caches of webgpu/host.ts (for measuring them). */
  get webgpuHostCache(): boolean { return webgpuHostCache(); },
  /** SHARELORA_WEBGPU_POOL_MIB: MiB of free buffers tfjs's webgpu pool keeps, least recently asked sizes destroyed first (webgpu/pool.ts); default 2048; 0: no cap (tfjs's way). */
  get webgpuPoolMiB(): number { return webgpuPoolMiB(); },
  /** SHARELORA_WEBGPU_SUBMIT_BATCH: dispatches per queue submit; 0 (default) leaves tfjs's choice. */
  get webgpuSubmitBatch(): number { return webgpuSubmitBatch(); },
  /** SHARELORA_GPU_SMS: workgroups that make one wave in the GEMM tile rule; default 132 (the H200's SMs). */
  get gpuSms(): number { return gpuSms(); },
  /** SHARELORA_GEMM_TILE (on access): force one GEMM tile by name (webgpu/gemm.ts checks the name). */
  get gemmTile(): string | undefined { return raw('SHARELORA_GEMM_TILE'); },
  /** SHARELORA_GEMM_SPLITK=0: no split-K for products whose tiles cannot fill the GPU (webgpu/splitk.ts). */
  get gemmSplitK(): boolean { return gemmSplitK(); },
  /** SHARELORA_GEMM_OCCUPANCY: 128×128 workgroups an SM runs at once in split-K's wave model (webgpu/splitk.ts); default 1; `node dist/bench/gemm.js '{"occupancy":true}'` measures it. */
  get gemmOccupancy(): number { return gemmOccupancy(); },
  /** SHARELORA_GEMM_UNROLL (default on; 0 turns it off): the library's GEMM tiles with the K loop unrolled, 128×128 also double-buffered (webgpu/gemm.ts; on since a whole step was measured faster with it, bench/NOTES.md "22 and 23, measured"). */
  get gemmUnroll(): boolean { return gemmUnroll(); },
  /** SHARELORA_GEMM_RULE: the GEMM tile rule (webgpu/gemm.ts). Default `efficiency`: 128×128 (split or not) or 64×64 by their last wave's fill and rates measured in a sweep (bench/NOTES.md entry 31; the default since session 17 measured GPT-2 small's step 1.5–1.8 ms faster with it, "30 and 31, measured"); `wave`: the rule before it (128×128 from about a wave of tiles); `waves2`: 128×128 only where it makes two waves, else 64×64 (entry 21). */
  get gemmRule(): 'wave' | 'waves2' | 'efficiency' { return gemmRule(); },
  /** SHARELORA_GEMM_PLAN: 'wide' (default) puts the rule's products onto 128 × 256 split to fill the GPU, or 32-deep 128 × 128 (gemm.ts widePlan); 'fill' (opt-in, entry 39): 128 × 256 or 128 × 192 over the K-slices a wave model times fastest (gemm.ts fillPlan); 'rule': the tile rule and split-K alone, as before session 19. */
  get gemmPlan(): 'wide' | 'fill' | 'rule' { return gemmPlan(); },
  /** SHARELORA_GEMM_THIN_WAVES: the thin LoRA products (webgpu/thin.ts) split K until their workgroups reach this many an SM; default 8 (2 before session 20: bench/NOTES.md "35 and 36, measured"). */
  get gemmThinWaves(): number { return gemmThinWaves(); },
  /** SHARELORA_GRAD_STATS_SPLIT: elements above which ShareLoraGradStats runs in two passes (webgpu/optim.ts); default 4,096 (65,536 before session 20: bench/NOTES.md "35 and 36, measured"). */
  get gradStatsSplit(): number { return gradStatsSplit(); },
  /** SHARELORA_GEMM_WIDE_BK=auto|16|32: the K-slice depth of the wide plan's 128 × 256 tile (webgpu/gemm.ts wideTile); `auto` (default) is 32 (48 KB) for unsplit products where the device allows it, else 16 (bench/NOTES.md "37, measured"). */
  get gemmWideBK(): 'auto' | '16' | '32' { return gemmWideBK(); },
  /** SHARELORA_WEBGPU_VEC4_ELEMENTWISE (default on; 0 turns it off): the activation kernels take four elements a thread where the count allows (webgpu/activation.ts; bench/NOTES.md entry 37). */
  get webgpuVec4Elementwise(): boolean { return webgpuVec4Elementwise(); },
  /** SHARELORA_WEBGPU_GELU_GEMM=1 (opt-in until measured): an MLP's GELU inside its second projection's GEMM, forward (on A's loads) and backward (the input gradient's epilogue) instead of two GELU kernels (ops.geluLinear; bench/NOTES.md entry 37). */
  get webgpuGeluGemm(): boolean { return webgpuGeluGemm(); },
  /** SHARELORA_WEBGPU_THIN_BLOCK=1 (on access; opt-in until measured, bench/NOTES.md entry 41): the thin LoRA products take 4 rows a thread and 4 of K an iteration, A and B as vec4 (webgpu/thin.ts thinBlocked). */
  get webgpuThinBlock(): boolean { return onOff('SHARELORA_WEBGPU_THIN_BLOCK', false); },
  /** SHARELORA_WEBGPU_XENT4=1 (on access; opt-in until measured, bench/NOTES.md entry 40): the cross-entropy kernels take four logits a thread an iteration (one rescale of the online softmax per four, four loads in flight; webgpu/cross-entropy.ts). */
  get webgpuXent4(): boolean { return onOff('SHARELORA_WEBGPU_XENT4', false); },
  /** SHARELORA_WEBGPU_SUBGROUP_NORMS=1 (on access; opt-in until measured): the register-row norm kernels sum their rows with subgroup operations where the device has `subgroups`, one barrier instead of a tree (webgpu/norm.ts; bench/NOTES.md entry 38). */
  get webgpuSubgroupNorms(): boolean { return onOff('SHARELORA_WEBGPU_SUBGROUP_NORMS', false); },
  /** SHARELORA_WEBGPU_ATTENTION_TILE=auto|plan|64x64t4 (on access): the tile of the attention backward's five products (webgpu/attention.ts); `auto` (default): 64x64t4 where causal, the GEMM's own choice otherwise; `plan`: always the GEMM's choice (bench/NOTES.md "37, measured"). */
  get webgpuAttentionTile(): 'auto' | 'plan' | '64x64t4' { return oneOf('SHARELORA_WEBGPU_ATTENTION_TILE', ['auto', 'plan', '64x64t4'] as const, 'auto'); },
  /** SHARELORA_GEMM_PRETRANSPOSE: MiB of transposed frozen-weight copies the GEMM may keep (webgpu/frozen.ts); default 4096; 0: none. */
  get gemmPretransposeMiB(): number { return gemmPretransposeMiB(); },
  /** SHARELORA_PRINT_WGSL: print the WGSL of every kernel whose key contains this text, when first compiled. */
  get printWgsl(): string | undefined { return printWgsl(); },
  /** SHARELORA_LIGHT_CLONE=0: tfjs's Engine.clone (an Identity kernel per tensor saved for the backward) instead of light-clone.ts. */
  get lightClone(): boolean { return lightClone(); },
  /** SHARELORA_EAGER_RELEASE=0: keep every activation and gradient until the backward pass ends (tfjs's way). */
  get eagerRelease(): boolean { return eagerRelease(); },
  /** SHARELORA_DAWN_LOG=1: let Dawn's own messages through when useBackend('auto') looks for a GPU adapter. */
  get dawnLog(): boolean { return dawnLog(); },

  // ---- the notebook kernel, the runner, plots

  /** SHARELORA_INTERRUPT_GRACE_MS: how long an interrupted cell may take to stop; default 2000. */
  get interruptGraceMs(): number { return interruptGraceMs(); },
  /** SHARELORA_SMOKE=1 (on access): notebooks shrink every run to a few steps (CI); `sharelora run` then needs --out. */
  get smoke(): boolean { return onOff('SHARELORA_SMOKE', false); },
  /** SHARELORA_PLOT_PNG=0 (on access): figures without the static PNG. */
  get plotPng(): boolean { return onOff('SHARELORA_PLOT_PNG', true); },
  /** SHARELORA_CHROMIUM (on access): the Chrome/Chromium binary for PNG/SVG export. */
  get chromium(): string | undefined { return raw('SHARELORA_CHROMIUM'); },

  // ---- the queue

  /** SHARELORA_QUEUE_KEY (on access, a secret): the key that signs queued jobs; src/train/queue/sign.ts checks it. */
  get queueKey(): string | undefined { return raw('SHARELORA_QUEUE_KEY'); },
  /** SHARELORA_RUNNER_BACKEND: set by a queue worker for its runner process (runner-pool.ts); default 'auto'. */
  get runnerBackend(): string { return runnerBackend(); },

  // ---- experiments (runProtocol, provenance, the GPU notebook runner)

  /** SHARELORA_SHARD=i/n (on access): this process runs its share of a notebook's runProtocol runs (scripts/gpu-notebooks.sh). */
  get shard(): string | undefined { return raw('SHARELORA_SHARD'); },
  /** SHARELORA_SHARD_SESSION (on access): scopes the shards' claim files, so claims of a killed call do not block the next. */
  get shardSession(): string { return raw('SHARELORA_SHARD_SESSION') ?? 'default'; },
  /** SHARELORA_COMMIT (on access): the commit provenance() reports where the tree has no .git (a copy on the GPU machine). */
  get commit(): string | undefined { return raw('SHARELORA_COMMIT'); },
  /** SHARELORA_SPAM_ROWS (on access): a JSON file of SpamAssassin rows written by scripts/export-spam-rows.ts, read instead of the 93 MB npm package where it cannot travel (the GPU machine). */
  get spamRows(): string | undefined { return raw('SHARELORA_SPAM_ROWS'); },
};

/** switches that change the computation or its speed; paths, secrets and the runner's own variables are left out */
const COMPUTE_SWITCH = /^SHARELORA_(WEBGPU_|GEMM_|LIGHT_CLONE|EAGER_RELEASE|GPU_SMS)/;

/** The compute switches set in this process, as `NAME=value, ...` in name order, or 'defaults' (provenance() prints it). */
export function computeSwitchesSet(): string {
  const set = Object.keys(process.env).filter((k) => COMPUTE_SWITCH.test(k) && process.env[k] !== '').sort();
  return set.length ? set.map((k) => `${k}=${process.env[k]}`).join(', ') : 'defaults';
}

/** The variable a queue worker sets for its runner process (the variable read by flags.runnerBackend). */
export const RUNNER_BACKEND_ENV = 'SHARELORA_RUNNER_BACKEND';
