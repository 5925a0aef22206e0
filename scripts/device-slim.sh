#!/usr/bin/env bash
# A device call carries at most 64 MiB: the tracked tree, untracked files and
# what `carry` names. The embedded models (data/*/model.safetensors, 14-24 MB
# each), the kept pretraining weights (scripts/pretrain/weights/*, 23 MB a
# model) and the test fixtures travel with every call, so a call that does not
# need them moves them aside first and puts them back after:
#   bash scripts/device-slim.sh out [KEEP_GLOB...]   # before the call; KEEP: paths to leave in place
#   bash scripts/device-slim.sh back                 # after it (restores exactly what was moved)
# e.g. `out scripts/pretrain/weights/causal-s13` keeps that one model folder in the tree for a run that starts from it.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
stash=.git/device-slim
case "${1:-}" in
  out)
    shift
    [ -e "$stash" ] && { echo "$stash exists: run '$0 back' first" >&2; exit 1; }
    mkdir -p "$stash"
    for f in data/*/model.safetensors test/fixtures scripts/pretrain/weights/*; do
      keep=0; for k in "$@"; do [[ $f == $k ]] && keep=1; done
      [ $keep = 1 ] || [ ! -e "$f" ] && continue
      mkdir -p "$stash/$(dirname "$f")" && mv "$f" "$stash/$f" && echo "$f" >> "$stash/.moved" && echo "aside: $f"
      # a `git commit -a` while they are aside must not record them as deleted (it did once: 68a1152)
      git ls-files -z -- "$f" | xargs -0 -r git update-index --skip-worktree
    done
    # (du names the files that are aside and not there: its complaints are expected, its total is what stays)
    git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | sed 's/total/bytes still tracked and present/' || true ;;
  back)
    [ -d "$stash" ] || { echo "nothing aside"; exit 0; }
    [ -f "$stash/.moved" ] && while read -r p; do
      [ -e "$p" ] && { echo "kept aside (a file of that name is back in the tree): $stash/$p"; continue; }
      mkdir -p "$(dirname "$p")"; mv "$stash/$p" "$p" && echo "back: $p"; done < "$stash/.moved"
    [ -n "$(find "$stash" -type f ! -name .moved -print -quit)" ] && { echo "$stash still holds files (see above): left in place" >&2; exit 1; }
    rm -rf "$stash"
    git ls-files -v | grep '^S ' | cut -c3- | tr '\n' '\0' | xargs -0 -r git update-index --no-skip-worktree ;;
  *) echo "usage: $0 out [KEEP...] | back" >&2; exit 2 ;;
esac
