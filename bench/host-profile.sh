#!/usr/bin/env bash
# Where the host's time goes in a steady-state GPT-2-small step (8 x 256, r = 8 on c_attn, AdamW, no clipping: the
# headline's shape), LoRA against ShareA: V8 CPU profiles of bench/worker.js, read on the spot by cpuprof_top.py
# (the last 1.5 s, self time, inclusive time, and the self time under the trainer's update and the replay's submit).
# bench/NOTES.md entry 43: LoRA's step sat 6.4 ms above its GPU time and ShareA's 2.3 with the same kernels.
#   bash bench/host-profile.sh OUT_DIR            (gpu-all.sh's host-profile part)
# Each run also leaves its worker result (@@RESULT: cpuMs, bindGroupReuse, dispatches a step) in OUT_DIR/host-*.log.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash bench/host-profile.sh OUT_DIR}
mkdir -p "$out"
cfg='{"model_type":"gpt2","architectures":["GPT2LMHeadModel"],"n_layer":12,"n_embd":768,"n_head":12,"vocab_size":50257,"n_positions":1024,"resid_pdrop":0,"embd_pdrop":0,"attn_pdrop":0,"layer_norm_epsilon":1e-5,"activation_function":"gelu_new","initializer_range":0.02}'
run() { # name, variant, env...
  local name=$1 variant=$2; shift 2
  local spec="{\"backend\":\"webgpu\",\"config\":$cfg,\"batch\":8,\"seq\":256,\"variant\":\"$variant\",\"r\":8,\"alpha\":16,\"targets\":[\"c_attn\"],\"steps\":60,\"warmup\":8,\"init\":\"tiled\"}"
  local dir; dir=$(mktemp -d)
  env "$@" node --cpu-prof --cpu-prof-dir="$dir" dist/bench/worker.js "$spec" > "$out/host-$name.log" 2>&1
  echo "# $name: exit $?" >> "$out/host-$name.log"
  python3 bench/cpuprof_top.py "$dir"/*.cpuprofile 1.5 update submit stepNow > "$out/host-$name.txt" 2>&1
  rm -rf "$dir"
}
run lora lora
run sharea sharea
run lora-out-of-place lora SHARELORA_WEBGPU_ADAMW_INPLACE=0
run sharea-out-of-place sharea SHARELORA_WEBGPU_ADAMW_INPLACE=0
