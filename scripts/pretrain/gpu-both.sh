#!/usr/bin/env bash
# Pretrains the causal and the masked LM side by side on the GPU machine, in
# calls of at most 10 minutes (scripts/pretrain/README.md, "On the GPU machine").
# The first call times 100 steps of each (both running, as they will) and sizes
# the runs to TRAIN_SECONDS of training; every call then trains until its
# budget, and a finished model is tarred into $OUT in 15 MB pieces.
#   bash scripts/pretrain/gpu-both.sh PRESET BUDGET_MINUTES [TRAIN_SECONDS]
set -uo pipefail
preset=$1 budget=$2 train_s=${3:-780}
node=(bash .device/run.sh node)
[ -f .pretrain/data/stats.json ] || { echo "no .pretrain/data here: carry it (a fresh machine lost it)"; exit 3; }
steps_for() { # kind -> N from the probe's ms/step
  local ms; ms=$(grep -o '[0-9]* ms/step' .pretrain/probe-$1.log | tail -1 | cut -d' ' -f1)
  echo $(( train_s * 1000 / ms ))
}
grep -q '=[0-9]' .pretrain/steps 2>/dev/null || rm -rf .pretrain/steps .pretrain/probe-run-* .pretrain/causal .pretrain/mlm
if [ ! -f .pretrain/steps ]; then
  for k in causal mlm; do
    "${node[@]}" dist/scripts/pretrain-$k.js train --data .pretrain/data --run .pretrain/probe-run-$k --out /tmp/probe-$k \
      --preset "$preset" --total-steps 100 --warmup 10 --budget-minutes 3 --eval-tokens 3000 --backend webgpu > .pretrain/probe-$k.log 2>&1 &
  done
  wait
  tail -n 3 .pretrain/probe-*.log
  c=$(steps_for causal) m=$(steps_for mlm) || exit 4
  [ "$c" -gt 0 ] && [ "$m" -gt 0 ] || { echo "probe failed"; exit 4; }
  echo "causal=$c mlm=$m" > .pretrain/steps
fi
cat .pretrain/steps; . .pretrain/steps
pids=()
for k in causal mlm; do
  n=${!k}
  "${node[@]}" dist/scripts/pretrain-$k.js train --data .pretrain/data --run .pretrain/$k --out .pretrain/out/$k \
    --preset "$preset" --total-steps "$n" --budget-minutes "$budget" --save-every-minutes 2 --backend webgpu \
    > >(tee -a .pretrain/$k.log | grep -E 'step [0-9]*0{2,}/|done|stopped|Error|error' ) 2>&1 &
  pids+=($!)
done
rc=0; for p in "${pids[@]}"; do wait "$p" || rc=$?; done
cp .pretrain/*.log "$OUT"/ 2>/dev/null
for k in causal mlm; do
  if [ -f .pretrain/out/$k/config.json ] && [ ! -f .pretrain/out/$k.sent ]; then
    tar cf - -C .pretrain/out "$k" | split -b 15M - "$OUT/$k.tar." && touch .pretrain/out/$k.sent
  fi
done
ls -la "$OUT"
exit $rc
