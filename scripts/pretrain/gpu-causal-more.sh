#!/usr/bin/env bash
# Issue 20: more training for the 12-layer causal model. Continues a saved
# model folder (its weights; a fresh AdamW and a new cosine schedule sized by
# --train-minutes) on the GPU machine, with a batch order of its own (--seed).
#   INIT=.pretrain/init/causal-s10 SEED=2 [BUDGET=MIN] [WD=0.1] bash scripts/pretrain/gpu-causal-more.sh TRAIN_MINUTES [LR] [WARMUP]
# INIT defaults to the shipped data/sharelora-gpt2-deep (keep its weights in the
# tree: scripts/device-slim.sh out 'data/sharelora-gpt2-deep/model.safetensors'),
# SEED to 1 (that model's own 1,620 updates used seed 0); another INIT folder
# travels in carry, with .pretrain/data.
# A run cut by the call's limit leaves a checkpoint (same machine: the same
# command continues it) and a float16 snapshot; both come back in $OUT
# (causal.tar.*: cat them | tar xf -, into send/), with the finished model folder when there is one.
# AVERAGE=1: once the run has finished, also the element-wise mean of INIT and the new model
# (scripts/pretrain/average.ts) and its held-out score (send/avg, send/logs/avg-NAME.json), so the
# finishing call only waits and copies.
set -uo pipefail
train_min=${1:?TRAIN_MINUTES} lr=${2:-1e-3} wu=${3:-200}
[ -f .pretrain/data/stats.json ] || { echo "no .pretrain/data here: carry it"; exit 3; }
init=${INIT:-data/sharelora-gpt2-deep} seed=${SEED:-1} wd=${WD:-0.1}
[ -f "$init/model.safetensors" ] || { echo "no $init/model.safetensors: keep it in the tree or carry it"; exit 3; }
[ -n "${PRETRAIN_LOCAL:-}" ] || . scripts/device-env.sh
common=(--data .pretrain/data --preset d256-l12 --save-every-minutes 2 --backend webgpu)
[ -n "${PRETRAIN_LOCAL:-}" ] && common=(--data .pretrain/data --preset d256-l12 --batch 2 --block 32 --eval-tokens 2000 --save-every-minutes 2 --backend "${PRETRAIN_LOCAL_BACKEND:-wasm}")
mkdir -p .pretrain/logs
# BUDGET=MIN cuts a call before the schedule ends (a schedule longer than one call: the same command in the
# next call on the same warm machine resumes it from its checkpoint)
budget=${BUDGET:-$(echo "$train_min" | awk '{print $1 + 0.7}')}
name=causal-more-$(basename "$init")-s$seed-lr$lr-wu$wu
[ "$wd" = 0.1 ] || name=$name-wd$wd
node dist/scripts/pretrain-causal.js train "${common[@]}" --run ".pretrain/run-$name" --out ".pretrain/out/$name" --name sharelora-gpt2-deep \
  --init "$init" --seed "$seed" --lr "$lr" --warmup "$wu" --weight-decay "$wd" --total-steps 8000 --train-minutes "$train_min" \
  --snapshot ".pretrain/snap/$name" --budget-minutes "$budget" >> ".pretrain/logs/$name.log" 2>&1
echo "exit $?"
grep -E 'step [0-9]+/' ".pretrain/logs/$name.log" | awk 'NR % 10 == 0' | tail -n 30
grep -hE 'done|stopped|replay|snapshot|Error|error' ".pretrain/logs/$name.log" | tail -n 8
if [ -n "${AVERAGE:-}" ] && [ -f ".pretrain/out/$name/config.json" ]; then
  evalflags=(--data .pretrain/data --backend webgpu)
  [ -n "${PRETRAIN_LOCAL:-}" ] && evalflags=(--data .pretrain/data --block 32 --eval-tokens 2000 --backend "${PRETRAIN_LOCAL_BACKEND:-wasm}")
  rm -rf ".pretrain/avg-$name"
  node dist/scripts/pretrain/average.js --out ".pretrain/avg-$name" --models "$init,.pretrain/out/$name" >> ".pretrain/logs/$name.log" 2>&1 \
    && node dist/scripts/pretrain-causal.js eval --model ".pretrain/avg-$name" "${evalflags[@]}" --json ".pretrain/logs/avg-$name.json" >> ".pretrain/logs/$name.log" 2>&1
  echo "average: exit $?"; grep -o '"heldOutBitsPerByte": *[0-9.]*' ".pretrain/logs/avg-$name.json" 2>/dev/null
fi
rm -rf .pretrain/stage-causal && mkdir -p .pretrain/stage-causal/send && cp -r .pretrain/logs .pretrain/stage-causal/send/
[ -f ".pretrain/avg-$name/config.json" ] && cp -r ".pretrain/avg-$name" .pretrain/stage-causal/send/avg
if [ -f ".pretrain/out/$name/config.json" ]; then cp -r ".pretrain/out/$name" .pretrain/stage-causal/send/model
elif [ -f ".pretrain/snap/$name/config.json" ]; then cp -r ".pretrain/snap/$name" .pretrain/stage-causal/send/snap; fi
mkdir -p "${OUT:-/tmp}" && tar cf - -C .pretrain/stage-causal send | split -b 15M - "${OUT:-/tmp}/causal.tar."
ls -la "${OUT:-/tmp}"
