#!/usr/bin/env bash
# Issue 20, the masked LM's plateau on the GPU: does a start from the trained
# causal model (scripts/pretrain/gpt2-to-roberta.ts) leave the no-context
# plateau where a random start does not? Two runs side by side in one
# device call, same data, batch, schedule shape and seed, each sized by
# training time (--train-minutes):
#   warm-lr1e-3   converted sharelora-gpt2-deep, peak 1e-3, 200 warm-up
#   cold-lr2e-3   random, sinusoidal positions, peak 2e-3, 400 warm-up
#   cold-lr5e-4   random, sinusoidal positions, peak 5e-4, 400 warm-up (session 7's recipe, the one run that
#                 left the plateau; only when RUNS names it)
# both with beta2 0.98 (the CPU diagnosis, scripts/pretrain/README.md; its
# warm runs at 1e-4, 3e-4 and 1e-3 did not differ detectably, so one warm rate).
#   [GPT2=DIR] [MLM_INIT=DIR] [RUNS=...] [BUDGET=MIN] bash scripts/pretrain/gpu-mlm-warm.sh TRAIN_MINUTES
# Carry .pretrain/data, and for warm-lr1e-3 .pretrain/tok (the RoBERTa tokenizer files, 0.2 MB);
# the conversion runs there, from the tracked data/sharelora-gpt2-deep, or from
# GPT2=DIR (e.g. GPT2=.pretrain/init/causal-s10, the continued causal model of
# session 10; carry it too).
# Back in $OUT: every run's log and held-out scores, and the model folder of
# the run with the best held-out masked accuracy (mlm.tar.*: cat them | tar xf -, into send/).
set -uo pipefail
train_min=${1:?TRAIN_MINUTES}
[ -f .pretrain/data/stats.json ] || { echo "no .pretrain/data here: carry it"; exit 3; }
[ -n "${PRETRAIN_LOCAL:-}" ] || . scripts/device-env.sh
common=(--data .pretrain/data --preset d256-l12 --save-every-minutes 3 --backend webgpu --beta2 0.98 --total-steps 4000)
[ -n "${PRETRAIN_LOCAL:-}" ] && common=(--data .pretrain/data --preset d256-l12 --batch 2 --block 32 --eval-tokens 2000 --save-every-minutes 3 --backend "${PRETRAIN_LOCAL_BACKEND:-wasm}" --beta2 0.98 --total-steps 4000)
mkdir -p .pretrain/logs .pretrain/init
# BUDGET=MIN cuts a call before the schedules end (a schedule longer than one call: the same command in the next
# call on the same warm machine resumes each run from its checkpoint); RUNS="warm-lr1e-3" runs only the warm start
budget=${BUDGET:-$(echo "$train_min" | awk '{print $1 + 1.2}')}
runs=${RUNS:-warm-lr1e-3 cold-lr2e-3}
for n in $runs; do case $n in warm-lr1e-3|cold-lr2e-3|cold-lr5e-4|more-lr5e-4|more-lr3e-4) ;; *) echo "RUNS: unknown run $n (warm-lr1e-3, cold-lr2e-3, cold-lr5e-4, more-lr5e-4, more-lr3e-4)"; exit 2 ;; esac; done
if [[ " $runs " == *" warm-lr1e-3 "* ]]; then
  # (only the conversion needs the RoBERTa tokenizer files; a cold or continued run does not: session 13's cold run
  # was refused for want of them)
  [ -f .pretrain/tok/tokenizer.json ] || { echo "no .pretrain/tok here: carry it (warm-lr1e-3 converts with it)"; exit 3; }
  gpt2=${GPT2:-data/sharelora-gpt2-deep}
  [ -f "$gpt2/model.safetensors" ] || { echo "no $gpt2/model.safetensors: keep it in the tree or carry it"; exit 3; }
  echo "warm start from $gpt2"
  node dist/scripts/pretrain/gpt2-to-roberta.js --gpt2 "$gpt2" --tokenizer .pretrain/tok --out .pretrain/init/warm || exit 5
fi
# more-lr5e-4 continues a saved masked LM (MLM_INIT, default session 13's scripts/pretrain/weights/mlm-s13, kept in the
# tree: leave it there with `scripts/device-slim.sh out scripts/pretrain/weights/mlm-s13`) with a new cosine schedule,
# peak 5e-4 (its own), 200 warm-up
mlm_init=${MLM_INIT:-scripts/pretrain/weights/mlm-s13}
# more-lr3e-4 the same at peak 3e-4 (session 13's run fell fastest once its rate had decayed below ~3e-4)
if [[ " $runs " == *" more-lr"* ]] && [ ! -f "$mlm_init/model.safetensors" ]; then echo "no $mlm_init/model.safetensors: carry it"; exit 3; fi
run() { # name lr warmup extra...
  local name=$1 lr=$2 wu=$3; shift 3
  node dist/scripts/pretrain-mlm.js train "${common[@]}" --run ".pretrain/run-$name" --out ".pretrain/out/$name" --name sharelora-roberta-deep \
    --lr "$lr" --warmup "$wu" --train-minutes "$train_min" --budget-minutes "$budget" --snapshot ".pretrain/snap/$name" "$@" >> ".pretrain/logs/$name.log" 2>&1
}
[[ " $runs " == *" warm-lr1e-3 "* ]] && run warm-lr1e-3 1e-3 200 --init .pretrain/init/warm &
[[ " $runs " == *" cold-lr2e-3 "* ]] && run cold-lr2e-3 2e-3 400 --position-init sinusoidal &
[[ " $runs " == *" cold-lr5e-4 "* ]] && run cold-lr5e-4 5e-4 400 --position-init sinusoidal &
[[ " $runs " == *" more-lr5e-4 "* ]] && run more-lr5e-4 5e-4 200 --init "$mlm_init" --seed 5 &
[[ " $runs " == *" more-lr3e-4 "* ]] && run more-lr3e-4 3e-4 200 --init "$mlm_init" --seed 5 &
wait
for f in .pretrain/logs/*.log; do echo "== $f"; grep -E 'step [0-9]+/' "$f" | awk 'NR % 8 == 0'; grep -hE 'done|stopped|replay|Error|error' "$f" | tail -n 4; done
# the best finished run by held-out masked accuracy comes back whole; the others as logs and scores
best=$(for n in $runs; do
  grep -ho '"maskedAccuracy":[0-9.e-]*' ".pretrain/logs/$n.log" | tail -1 | sed "s/.*://; s/$/ $n/"; done | sort -gr | head -1 | cut -d' ' -f2)
echo "best: ${best:-none}"
rm -rf .pretrain/stage-mlm && mkdir -p .pretrain/stage-mlm/send && cp -r .pretrain/logs .pretrain/stage-mlm/send/
for n in $runs; do cp ".pretrain/out/$n/training_stats.json" ".pretrain/stage-mlm/send/logs/$n-training_stats.json" 2>/dev/null; done
[ -n "$best" ] && cp -r ".pretrain/out/$best" .pretrain/stage-mlm/send/best
# a run cut by BUDGET: its float16 snapshot, what survives if the machine does not (--init it on a fresh one)
for n in $runs; do [ ! -f ".pretrain/out/$n/config.json" ] && [ -f ".pretrain/snap/$n/config.json" ] && cp -r ".pretrain/snap/$n" ".pretrain/stage-mlm/send/snap-$n"; done
mkdir -p "${OUT:-/tmp}" && tar cf - -C .pretrain/stage-mlm send | split -b 15M - "${OUT:-/tmp}/mlm.tar."
ls -la "${OUT:-/tmp}"
