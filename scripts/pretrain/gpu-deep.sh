#!/usr/bin/env bash
# Pretrains the 12-layer causal model (sharelora-gpt2-deep) and the 12-layer
# masked LM (sharelora-roberta-deep) side by side on the GPU machine, in calls
# of at most 10 minutes (scripts/pretrain/README.md, "On the GPU machine").
#   bash scripts/pretrain/gpu-deep.sh CALL_MINUTES
#   CAUSAL=0 MLM_RECIPE=mlm-lr5e-4-wu400:5e-4:400 MLM_TRAIN_MINUTES=17 bash scripts/pretrain/gpu-deep.sh 9
# Both schedules are sized by training time (--train-minutes), so a run ends
# with its cosine decay finished whatever its speed turns out to be.
# The first call also sweeps the masked LM's peak rate and warm-up: every
# candidate trains from scratch for SWEEP_MINUTES alongside the causal run;
# the candidate with the lowest mean training loss over the last 200 updates
# that all of them reached wins and continues; the others are dropped.
# Every call ends by tarring the logs, the sweep table and float16 snapshots
# of the unfinished runs (or the finished models) into $OUT in 15 MB pieces:
# if the next call lands on a fresh machine, the runs restart from the
# snapshots (--init) instead of from nothing.
set -uo pipefail
call_min=${1:?CALL_MINUTES}
sweep_min=${SWEEP_MINUTES:-2.5}
causal_train_min=${CAUSAL_TRAIN_MINUTES:-8.3}
mlm_train_min=${MLM_TRAIN_MINUTES:-8}
[ -f .pretrain/data/stats.json ] || { echo "no .pretrain/data here: carry it"; exit 3; }
# unpack Node and the Vulkan loader once: several runs unpacking them at the same moment would race
# (PRETRAIN_LOCAL=1: a smoke run of this script's flow on this machine, with tiny shapes on the cpu backend)
[ -n "${PRETRAIN_LOCAL:-}" ] || . scripts/device-env.sh
node=(node)
mkdir -p .pretrain/logs .pretrain/out .pretrain/snap
t0=$(date +%s)
left() { echo "$call_min $t0 $(date +%s)" | awk '{ printf "%.2f", $1 - ($3 - $2) / 60 }'; }
# --init only where a run starts on a fresh machine from a snapshot that came back
init_flag() { [ -f ".pretrain/init/$1/config.json" ] && [ ! -f ".pretrain/run-$1/run.json" ] && echo "--init .pretrain/init/$1"; }
common=(--data .pretrain/data --preset d256-l12 --save-every-minutes 2 --backend webgpu)
[ -n "${PRETRAIN_LOCAL:-}" ] && common=(--data .pretrain/data --preset d192-l8 --batch 2 --block 32 --eval-tokens 1000 --save-every-minutes 2 --backend cpu)
causal() {
  "${node[@]}" dist/scripts/pretrain-causal.js train "${common[@]}" --run .pretrain/run-causal --out .pretrain/out/sharelora-gpt2-deep \
    --name sharelora-gpt2-deep --lr 1e-3 --warmup 300 --total-steps 4000 --train-minutes "$causal_train_min" \
    --snapshot .pretrain/snap/causal --budget-minutes "$1" $(init_flag causal) >> .pretrain/logs/causal.log 2>&1
}
mlm() { # name lr warmup budget
  # train refuses --position-init next to --init (a snapshot restart on a fresh machine): the table comes from the folder then
  local init pos=(--position-init sinusoidal)
  init=$(init_flag "$1")
  [ -n "$init" ] && pos=()
  "${node[@]}" dist/scripts/pretrain-mlm.js train "${common[@]}" --run ".pretrain/run-$1" --out .pretrain/out/sharelora-roberta-deep \
    --name sharelora-roberta-deep --lr "$2" --warmup "$3" --total-steps 4000 --train-minutes "$mlm_train_min" \
    --snapshot ".pretrain/snap/$1" --budget-minutes "$4" ${pos[@]+"${pos[@]}"} --beta2 0.98 $init >> ".pretrain/logs/$1.log" 2>&1
}
# CAUSAL=0: the masked LM alone; MLM_RECIPE=name:lr:warmup skips the sweep and trains that recipe
[ -n "${MLM_RECIPE:-}" ] && [ ! -f .pretrain/mlm-winner ] && echo "$MLM_RECIPE" > .pretrain/mlm-winner
[ "${CAUSAL:-1}" = 0 ] || [ -f .pretrain/out/sharelora-gpt2-deep/config.json ] || { causal "$(echo "$call_min" | awk '{print $1 - 0.6}')" & }
causal_pid=${!:-none}
if [ ! -f .pretrain/mlm-winner ]; then
  # name lr warmup, all with sinusoidal position init and beta2 0.98 (the CPU diagnosis of 2026-12-06 in
  # scripts/pretrain/README.md: a higher peak rate and a usable position table leave the no-context plateau
  # sooner; on the corpus that needs >= 1,500 updates a candidate, so give SWEEP_MINUTES enough for that)
  cands="mlm-lr5e-4-wu400:5e-4:400 mlm-lr1e-3-wu400:1e-3:400 mlm-lr2e-3-wu400:2e-3:400"
  for c in $cands; do IFS=: read -r n lr wu <<< "$c"; mlm "$n" "$lr" "$wu" "$sweep_min" & done
  wait $(jobs -p | grep -v "^$causal_pid$")
  # the table: each candidate's mean loss over the last 100 updates that every candidate reached
  node -e '
    const fs = require("fs");
    const runs = process.argv.slice(1).map((c) => { const [name, lr, wu] = c.split(":");
      const log = fs.existsSync(`.pretrain/logs/${name}.log`) ? fs.readFileSync(`.pretrain/logs/${name}.log`, "utf8") : "";
      const pts = [...log.matchAll(/step (\d+)\/\d+ loss ([\d.]+)/g)].map((m) => [+m[1], +m[2]]);
      return { name, lr: +lr, warmup: +wu, pts }; });
    const upto = Math.min(...runs.map((r) => r.pts.at(-1)?.[0] ?? 0));
    const rows = runs.map((r) => { const w = r.pts.filter(([s]) => s > upto - 200 && s <= upto).map(([, l]) => l);
      return { name: r.name, lr: r.lr, warmup: r.warmup, atStep: upto, meanLossLast200: w.length ? w.reduce((a, b) => a + b) / w.length : Infinity,
        lossAt: Object.fromEntries(r.pts.filter(([s]) => s % 100 === 0 && s <= upto).map(([s, l]) => [s, l])) }; });
    rows.sort((a, b) => a.meanLossLast200 - b.meanLossLast200);
    fs.writeFileSync(".pretrain/logs/mlm-sweep.json", JSON.stringify(rows, null, 1) + "\n");
    console.log(rows.map((r) => `${r.name}: mean loss ${r.meanLossLast200.toFixed(4)} over updates ${upto - 199}..${upto}`).join("\n"));
    fs.writeFileSync(".pretrain/mlm-winner", `${rows[0].name}:${rows[0].lr}:${rows[0].warmup}\n`);
  ' $cands
  cat .pretrain/mlm-winner
  for c in $cands; do n=${c%%:*}; grep -q "^$n:" .pretrain/mlm-winner || rm -rf ".pretrain/run-$n" ".pretrain/snap/$n"; done
fi
IFS=: read -r wn wlr wwu < .pretrain/mlm-winner
b=$(echo "$(left)" | awk '{print $1 - 0.6}')
if [ ! -f .pretrain/out/sharelora-roberta-deep/config.json ] && awk "BEGIN{exit !($b > 0.5)}"; then mlm "$wn" "$wlr" "$wwu" "$b"; fi
wait
grep -hE 'done|stopped|snapshot|Error|error' .pretrain/logs/*.log | tail -n 20
grep -hE 'step [0-9]+/' .pretrain/logs/causal.log .pretrain/logs/"$wn".log | awk 'NR % 10 == 0' | tail -n 12
# what comes back: logs + sweep table, and each finished model or else its snapshot
rm -rf .pretrain/send && mkdir -p .pretrain/send
cp -r .pretrain/logs .pretrain/send/
for m in sharelora-gpt2-deep sharelora-roberta-deep; do [ -f ".pretrain/out/$m/config.json" ] && cp -r ".pretrain/out/$m" .pretrain/send/; done
[ -f .pretrain/out/sharelora-gpt2-deep/config.json ] || { [ -f .pretrain/snap/causal/config.json ] && cp -r .pretrain/snap/causal .pretrain/send/snap-causal; }
[ -f .pretrain/out/sharelora-roberta-deep/config.json ] || { [ -f ".pretrain/snap/$wn/config.json" ] && cp -r ".pretrain/snap/$wn" ".pretrain/send/snap-$wn"; }
cp .pretrain/mlm-winner .pretrain/send/ 2>/dev/null
tar cf - -C .pretrain send | split -b 15M - "$OUT/pretrain.tar."
ls -la "$OUT"
