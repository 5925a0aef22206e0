#!/usr/bin/env bash
# The one device script (issue 25): every GPU measurement the project keeps,
# from the repo root on the GPU machine, a few parts a call (BENCH_PARTS; a call runs at most 10 minutes):
#   bash bench/pack-device.sh && npm run build          # here, once
#   bash .device/run.sh bash bench/gpu-all.sh           # there (carry: .device, dist)
# Writes into $OUT (else bench/results/gpu-all-<date>/), these files and more:
#   gpt2-kernels.{json,log} GPT-2 small ShareA alone and under each kernel switch, one run each, every run profiled:
#                          the log ends with each variant's GPU time and the shapes that moved (bench/run.ts profileDelta)
#   gpt2-small.{json,log}  GPT-2 small 8 x 256, LoRA and ShareA vs PyTorch + PEFT eager (3 runs each,
#                          interleaved, median of medians) and torch.compile (ShareA); the LoRA run's
#                          per-kernel profile (timestamp quantization off) is in the JSON (ours.lora.profile*)
#   gpt2-host.{json,log}   GPT-2 small, LoRA and ShareA against PyTorch, AdamW out of place (entry 43), chunked replay (44), prepare off (45)
#   host-{lora,sharea,...}.{txt,log} bench/host-profile.sh: V8 CPU profiles of the GPT-2-small step, read on the device (entry 43)
#   gpt2-pipeline.{json,log} the same with both sides clipping at 1 (--clip), LoRA and ShareA interleaved with fit()'s
#                          pipelined step, the multi-tensor optimizer, and both with the candidate kernels (entry 42)
#   notebook.{json,log}    notebook scale, ShareA at 6 and 12 layers, both sides, 3 runs each (LoRA's step
#                          costs the same at this shape; --notebook-variants sharea,lora adds it)
#   scaling.{json,log}     GPT-2 medium, large, a LLaMA-7B-wide stack, ShareA, both sides
#   max.{json,log}         the largest LLaMA-7B-wide model (ShareA r=8, fp32, batch 1 x 256) each side fine-tunes
#   pretrain.{json,log}    the pretraining shape (GPT-2 d256-l12, vocab 8257), every parameter trained, batch 64 x 256,
#                          ours vs PyTorch (AdamW over all parameters, clip 1), 3 runs each, interleaved; our per-kernel
#                          profile of one step (pretrain.log); one run each with split-K off (the weight gradients' split,
#                          bench/NOTES.md entry 25), the multi-tensor optimizer on, the flash backward on and Dawn's
#                          robustness off (entry 27); the masked LM with and without headRows (entry 26). About 4-6
#                          minutes: BENCH_PARTS=pretrain bash .device/run.sh bash bench/gpu-all.sh
#   tests.log              the 12 reference tests and test/gpu on webgpu (tests-norobust.log: the same, robustness off)
#   gemm.log               the GEMM sweep (one @@RESULT JSON line: ms per product and tile)
#   summary.txt            the ratio table, also printed last
# Each part has its own time limit, so one that hangs cannot take the rest.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench/results/gpu-all-$(date -u +%Y-%m-%dT%H%M)}
mkdir -p "$out"
t0=$(date +%s)
part() { # name, limit in s, command...
  local name=$1 limit=$2; shift 2
  # BENCH_PARTS="notebook gpt2-small": only those parts (a call with little device time left)
  [ -n "${BENCH_PARTS:-}" ] && [[ " $BENCH_PARTS " != *" $name "* ]] && return 0
  local a; a=$(date +%s)
  timeout --signal=TERM --kill-after=10 "$limit" "$@" >"$out/$name.log.tmp" 2>&1
  local rc=$?
  mv "$out/$name.log.tmp" "$out/$name.log"
  echo "# $name: exit $rc after $(( $(date +%s) - a )) s (t = $(( $(date +%s) - t0 )) s)" | tee -a "$out/summary.txt"
}
export SHARELORA_PYTHON=${SHARELORA_PYTHON:-python3}
# the kernels of bench/NOTES.md entry 10 are the defaults since its entry 11; the exports keep them explicit, and the
# same-run variants below turn groups of them off again, so each gain is measured against the old path
export SHARELORA_WEBGPU_DEVICE=${SHARELORA_WEBGPU_DEVICE:-sharelora} SHARELORA_GEMM_SPLITK=${SHARELORA_GEMM_SPLITK:-1} SHARELORA_GEMM_PRETRANSPOSE=${SHARELORA_GEMM_PRETRANSPOSE:-4096} \
  SHARELORA_WEBGPU_FLASH_ATTENTION=${SHARELORA_WEBGPU_FLASH_ATTENTION:-1} SHARELORA_LIGHT_CLONE=${SHARELORA_LIGHT_CLONE:-1} SHARELORA_WEBGPU_BINDGROUP_CACHE=${SHARELORA_WEBGPU_BINDGROUP_CACHE:-1}
# the opt-in switches are off here as in the library: the headline rows measure the defaults, and the notebook
# part's "... on" variants measure each opt-in kernel against them (entry 12's fused LN was slower, entry 14)
export SHARELORA_WEBGPU_FUSED_LN=${SHARELORA_WEBGPU_FUSED_LN:-0} SHARELORA_WEBGPU_FLAT_STREAM=${SHARELORA_WEBGPU_FLAT_STREAM:-0} \
  SHARELORA_WEBGPU_MULTI_TENSOR=${SHARELORA_WEBGPU_MULTI_TENSOR:-0} SHARELORA_WEBGPU_FLASH_BACKWARD=${SHARELORA_WEBGPU_FLASH_BACKWARD:-0}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >>"$out/summary.txt" 2>/dev/null || true

# same-run A/Bs of this session's switches (ours only, one run each; bench/NOTES.md entry 10): at GPT-2 small
# (ShareA) the GEMM changes off (split-K and the transposed frozen copies; the per-shape profile separates the
# two) and the flash attention forward off; at notebook scale Dawn's validation off (opt-in) and the host
# changes off (light clone, bind-group cache), and the opt-in kernels on: the fused residual add + LayerNorm
# (entry 12), entry 13's flat [B·T, C] stream and multi-tensor optimizer, each alone and the last two together.
# Since entry 17 (step replay on by default) the notebook part measures replay off, the multi-tensor optimizer and entry
# 13's flat stream, since entry 18 the flash-style attention backward, since entry 19 the pipelined step (opt-in), alone
# and with the multi-tensor optimizer; validation off, host changes off and fused LN were measured in entries 11 and 14.
# Session 10 dropped the flat stream, the flash backward and pipeline + multi-tensor from the notebook part (each
# measured twice or more without a gain: entries 14, 17-18, 19 measured). Since entry 21 both parts measure the unrolled GEMM (SHARELORA_GEMM_UNROLL=1) and the two-wave tile rule
# (SHARELORA_GEMM_RULE=waves2), which replaced GPT-2 small's "flash
# attention off" (53.97 ms against the default's 54.2–57.7 in session 10's run: no longer a difference to track)
# (session 10: the part ran past 200 s on a warm machine before torch.compile; the GEMM unroll variant is entry 21's)
# Since session 12 the unrolled GEMM is the default (bench/NOTES.md "22 and 23, measured"). Since session 15 (entry 28) both step parts
# measure Dawn's bounds clamping off and the multi-tensor optimizer, alone and together, and the flash backward, whose
# loops lost their 69 clamps a key tile in entry 28, the flash forward with one thread a query row (entry 29's change off) and with its opt-in block rescale (unroll off, the two-wave rule and
# "GEMM changes off" were measured in sessions 10-12 and are no longer tracked)
# Since session 17 the wave-fill tile rule (entry 31, SHARELORA_GEMM_RULE=efficiency) is the default: both step parts
# measure the rule before it as "rule wave". Since session 18 (entry 33) the GPT-2-small part measures the sweep's two
# winners in the step (the LM head's forward on 128 x 256, the other 128 x 128 products on 32-deep slices) and no longer
# robustness off, the flash variants and occupancy 2 (each measured in sessions 16-17 without a gain); both step parts
# measure entry 34's plan (128 x 256 split to fill the GPU's rounds). Since session 19 that plan is the default and both
# step parts measure the plan before it ("plan rule"); the GPT-2-small part runs it interleaved, three runs a side
# (--interleave-variants: session 19's one-run variants and cross-call comparisons disagreed by 2-3 ms), with entry 35's
# thin-product and statistics switches and entry 36's causal skip off. Since session 20 (entry 37) the thin products at 8
# waves and the two-pass statistics are defaults; a kernel part measures them against the old settings and entry 37's
# switches, one profiled run each (since "37, measured": the opt-in GELU GEMM and fused LN, alone and together, and the
# new defaults' old settings) (bench/run.ts profileDelta prints each variant's per-shape GPU time against the
# default's), ahead of the headline part (since session 21, entry 39: the fill plan's 128 × 192, alone and with every opt-in kernel); the notebook part keeps four variants (its eleven of session 19 took
# ~250 s; robustness, multi-tensor, the flash variants and replay off were measured in sessions 10-17 without a gain)
# kernel changes first (a call cut short keeps them), ShareA alone (--ours-only: no PyTorch, no LoRA), one run each
# with a profile: their GPU time by shape is the measurement; the step's wall clock of one run is not (bench/NOTES.md
# "34, measured")
part gpt2-kernels 260 node dist/bench/run.js --suite gpu --steps 8 --warmup 4 --repeats 1 --no-plain --no-eager-attention --init tiled \
  --variant-models sharea --ours-only \
  --variants '{"plan fill":{"SHARELORA_GEMM_PLAN":"fill"},"xent4":{"SHARELORA_WEBGPU_XENT4":"1"},"thin block":{"SHARELORA_WEBGPU_THIN_BLOCK":"1"},"multi-tensor on":{"SHARELORA_WEBGPU_MULTI_TENSOR":"1"},"all candidates":{"SHARELORA_WEBGPU_THIN_BLOCK":"1","SHARELORA_GEMM_PLAN":"fill","SHARELORA_WEBGPU_GELU_GEMM":"1","SHARELORA_WEBGPU_FUSED_LN":"1","SHARELORA_WEBGPU_SUBGROUP_NORMS":"1","SHARELORA_WEBGPU_XENT4":"1"},"gelu in gemm":{"SHARELORA_WEBGPU_GELU_GEMM":"1"},"fused LN on":{"SHARELORA_WEBGPU_FUSED_LN":"1"},"gelu in gemm + fused LN":{"SHARELORA_WEBGPU_GELU_GEMM":"1","SHARELORA_WEBGPU_FUSED_LN":"1"},"subgroup norms":{"SHARELORA_WEBGPU_SUBGROUP_NORMS":"1"},"subgroup norms + fused LN":{"SHARELORA_WEBGPU_SUBGROUP_NORMS":"1","SHARELORA_WEBGPU_FUSED_LN":"1"},"wide BK 16":{"SHARELORA_GEMM_WIDE_BK":"16"},"attention tile plan":{"SHARELORA_WEBGPU_ATTENTION_TILE":"plan"},"thin 2 + stats 65536":{"SHARELORA_GEMM_THIN_WAVES":"2","SHARELORA_GRAD_STATS_SPLIT":"65536"},"vec4 elementwise off":{"SHARELORA_WEBGPU_VEC4_ELEMENTWISE":"0"}}' \
  --out "$out/gpt2-kernels.json"
# fit()'s pipelined step at GPT-2 small (since session 21): there LoRA's wall clock sat 6.4 ms above its GPU time and
# ShareA's 2.3, the same kernels, so host time between steps, which the pipeline hides (it needs clipping: --clip 1 on
# both sides, HF Trainer's default); and the candidate kernels' 1.35 ms of GPU time did not show in the wall clock
# without it. LoRA and ShareA, both sides clipping, the pipeline alone and with the candidates (entry 39's fill plan,
# 37's GELU GEMM and fused LN, 38's subgroup norms, 40's four-wide cross-entropy), three runs a side interleaved
# About 4 minutes.
part gpt2-pipeline 400 node dist/bench/run.js --suite gpu --steps 20 --warmup 6 --repeats 3 --no-plain --no-eager-attention --init tiled \
  --clip 1 --interleave-variants --variant-models lora,sharea \
  --variants '{"pipeline":{"SHARELORA_WEBGPU_PIPELINE":"1"},"pipeline + multi-tensor + candidates":{"SHARELORA_WEBGPU_PIPELINE":"1","SHARELORA_WEBGPU_MULTI_TENSOR":"1","SHARELORA_GEMM_PLAN":"fill","SHARELORA_WEBGPU_GELU_GEMM":"1","SHARELORA_WEBGPU_FUSED_LN":"1","SHARELORA_WEBGPU_SUBGROUP_NORMS":"1","SHARELORA_WEBGPU_XENT4":"1"}}' \
  --out "$out/gpt2-pipeline.json"
# sessions 22-23's host-side changes, LoRA and ShareA, no clipping, three runs a side interleaved with PyTorch's: the
# default (AdamW in place, entry 43; the next step encoded while this one runs, entry 45) against AdamW out of place
# and against encoding at submit ("prepare off"), and the replayed step in growing command buffers (opt-in, entry 44).
# The default rows are the headline's. About 6-7 minutes: BENCH_PARTS="gpt2-host host-profile" is one call
part gpt2-host 420 node dist/bench/run.js --suite gpu --steps 20 --warmup 6 --repeats 3 --no-plain --no-eager-attention --init tiled \
  --interleave-variants --variant-models lora,sharea \
  --variants '{"adamw out of place":{"SHARELORA_WEBGPU_ADAMW_INPLACE":"0"},"prepare off":{"SHARELORA_WEBGPU_REPLAY_PREPARE":"0"},"chunks of 16":{"SHARELORA_WEBGPU_REPLAY_CHUNK":"16"}}' \
  --out "$out/gpt2-host.json"
# where the host time of a GPT-2-small step goes, LoRA against ShareA, AdamW in place (the default) and out of place (entry 43)
part host-profile 120 bash bench/host-profile.sh "$out"
# the headline: both sides three runs each, interleaved, and torch.compile (no clipping, as every session before)
part gpt2-small 300 node dist/bench/run.js --suite gpu --steps 20 --warmup 6 --repeats 3 --no-plain --no-eager-attention --init tiled \
  --compile sharea --out "$out/gpt2-small.json"
# 45 s was too short on a machine whose shader cache was cold (session 10: cut after 10 of 18 suites)
part tests 150 env SHARELORA_BACKEND=webgpu node --test --test-concurrency=1 dist/test/reference.test.js dist/test/gpu/
# the 12 reference tests and the tests of session 22's host-side defaults alone (a call with little device time left)
part tests-quick 120 env SHARELORA_BACKEND=webgpu node --test --test-concurrency=1 dist/test/reference.test.js dist/test/gpu/adamw-inplace.test.js dist/test/gpu/step-replay.test.js dist/test/gpu/step-pipeline.test.js
# the reference tests with entry 37's two opt-in kernels (the GELU inside the GEMM, the fused residual add + LayerNorm)
# and entry 38's subgroup row sums (since session 21 also entry 39's fill plan, entry 40's four-wide cross-entropy and entry 41's blocked thin products: every
# candidate default at once)
part tests-gelu 60 env SHARELORA_BACKEND=webgpu SHARELORA_WEBGPU_GELU_GEMM=1 SHARELORA_WEBGPU_FUSED_LN=1 SHARELORA_WEBGPU_SUBGROUP_NORMS=1 SHARELORA_GEMM_PLAN=fill SHARELORA_WEBGPU_XENT4=1 SHARELORA_WEBGPU_THIN_BLOCK=1 node --test --test-concurrency=1 dist/test/reference.test.js
# the same tests with Dawn's bounds clamping off (entry 28: whether it can be the default)
part tests-norobust 150 env SHARELORA_BACKEND=webgpu SHARELORA_WEBGPU_ROBUSTNESS=0 node --test --test-concurrency=1 dist/test/reference.test.js dist/test/gpu/
part tests-optin 60 env SHARELORA_BACKEND=webgpu FLASH_BACKWARD_ALL=1 SHARELORA_WEBGPU_FLAT_STREAM=1 SHARELORA_WEBGPU_MULTI_TENSOR=1 SHARELORA_WEBGPU_FLASH_BACKWARD=1 node --test --test-concurrency=1 dist/test/reference.test.js dist/test/gpu/step-replay.test.js dist/test/gpu/flash-backward.test.js
# how many 128×128 (and 64×64) workgroups an SM runs at once (bench/NOTES.md entry 30): split-K's wave model assumes one
part occupancy 60 node dist/bench/gemm.js '{"occupancy":true}'
# the GEMM sweep over GPT-2 small's products (bench/NOTES.md entry 20): the library's choice against forced tiles, the
# unrolled K loop (un, dbun) and split-K 2 for the 768 x 768 products
part gemm 150 node dist/bench/gemm.js '{"reps":10,"tiles":["lib","128x128k32","128x256","128x256k32","128x256@s2","128x256@s8","128x192","128x192k32","128x192@s2","128x192@s3","128x192dbun","192x192"]}'
part scaling 90 node dist/bench/run.js --suite scaling --steps 6 --warmup 2 --out "$out/scaling.json"
# (after the scaling part since session 20: a call short of time keeps the step parts, the tests and the scaling table)
part notebook 200 node dist/bench/run.js --suite notebook --steps 20 --warmup 5 --repeats 3 --notebook-variants sharea \
  --variants '{"plan fill":{"SHARELORA_GEMM_PLAN":"fill"},"thin block":{"SHARELORA_WEBGPU_THIN_BLOCK":"1"},"thin 2 + stats 65536":{"SHARELORA_GEMM_THIN_WAVES":"2","SHARELORA_GRAD_STATS_SPLIT":"65536"},"vec4 elementwise off":{"SHARELORA_WEBGPU_VEC4_ELEMENTWISE":"0"},"fused LN on":{"SHARELORA_WEBGPU_FUSED_LN":"1"},"subgroup norms":{"SHARELORA_WEBGPU_SUBGROUP_NORMS":"1"},"attention tile plan":{"SHARELORA_WEBGPU_ATTENTION_TILE":"plan"},"gelu in gemm":{"SHARELORA_WEBGPU_GELU_GEMM":"1"}}' \
  --out "$out/notebook.json"
# the pretraining step (scripts/pretrain/run.ts trainRun: full training, step replay on): where its ~170 ms go
# (bench/pretrain-census.ts counts its dispatches on lavapipe); the variants: split-K off, and three opt-in switches
# (Dawn's bounds clamping off: −20% GEMM time in entry 2, never measured on a whole pretraining step)
part pretrain 360 node dist/bench/run.js --suite pretrain --steps 20 --warmup 6 --repeats 3 \
  --variants '{"plan rule":{"SHARELORA_GEMM_PLAN":"rule"},"split-K off":{"SHARELORA_GEMM_SPLITK":"0"},"multi-tensor on":{"SHARELORA_WEBGPU_MULTI_TENSOR":"1"},"flash backward on":{"SHARELORA_WEBGPU_FLASH_BACKWARD":"1"},"robustness off":{"SHARELORA_WEBGPU_ROBUSTNESS":"0"}}' \
  --out "$out/pretrain.json"
# the largest LLaMA-7B-wide model ShareA r=8 fine-tunes, ours and PyTorch + PEFT (issue 25's done-when; last measured on
# an H200 in session 1, runs 3 and 7): a search of ~200 s a side, so a call of its own: BENCH_PARTS=max
part max 560 node dist/bench/run.js --suite max --max-budget 200 --out "$out/max.json"

{
  echo "# tests: $(grep -E '^# (pass|fail) ' "$out/tests.log" 2>/dev/null | tr '\n' ' ')"
  echo "# tests-quick (reference + session 22's defaults): $(grep -E '^# (pass|fail) ' "$out/tests-quick.log" 2>/dev/null | tr '\n' ' ')"
  echo "# tests, the candidate defaults (GELU GEMM, fused LN, subgroup norms, fill plan, xent4, thin block): $(grep -E '^# (pass|fail) ' "$out/tests-gelu.log" 2>/dev/null | tr '\n' ' ')"
  echo "# tests, robustness off: $(grep -E '^# (pass|fail) ' "$out/tests-norobust.log" 2>/dev/null | tr '\n' ' ')"
  echo "# tests, flat stream + multi-tensor + flash backward on: $(grep -E '^# (pass|fail) ' "$out/tests-optin.log" 2>/dev/null | tr '\n' ' ')"
  node dist/bench/summary.js "$out"
  # the occupancy probe's lines (bench/gemm.ts runOccupancyProbe; entry 30)
  [ -f "$out/occupancy.log" ] && grep -E ' waves \(' "$out/occupancy.log"
  # the pretraining part's own table (bench/run.ts suitePretrain)
  [ -f "$out/pretrain.log" ] && sed -n '/^Pretraining shape/,/^our profiled step/p' "$out/pretrain.log"
  echo "# total $(( $(date +%s) - t0 )) s"
} | tee -a "$out/summary.txt"
