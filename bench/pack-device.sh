#!/usr/bin/env bash
# Like ../shared/device/pack.sh, but packs only the runtime dependencies the
# benchmark, the tests and `sharelora run` load (tfjs-core + backends, webgpu,
# arquero, tokenizers, hyparquet, tslab, plotly.js; 39 MB packed): the optional
# data sets do not fit beside it in the 64 MiB a device call may carry, so the
# notebooks' SpamAssassin rows travel as scripts/export-spam-rows.ts's file.
#   bash bench/pack-device.sh     (from the repo root; writes .device/)
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
rm -rf .device && mkdir -p .device/debs
stage=$(mktemp -d)
node -e '
const p = require("./package.json");
const keep = ["tslab", "plotly.js-dist-min", "@tensorflow/tfjs-core", "@tensorflow/tfjs-backend-cpu", "@tensorflow/tfjs-backend-webgpu", "@tensorflow/tfjs-backend-wasm", "webgpu", "arquero", "@huggingface/tokenizers", "hyparquet", "hyparquet-writer", "gpt-3-encoder"];
const deps = {};
for (const k of keep) { const v = p.dependencies[k] ?? (p.optionalDependencies || {})[k]; if (v) deps[k] = v; }
require("fs").writeFileSync(process.argv[1] + "/package.json", JSON.stringify({ name: "sharelora-device", version: "0.0.0", type: "module", dependencies: deps, overrides: p.overrides }, null, 1));
' "$stage"
(cd "$stage" && npm install --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
find "$stage/node_modules" -type d \( -name 'darwin*' -o -name 'win32*' -o -name 'linux-arm*' -o -name '*musl*' \) -prune -exec rm -rf {} + 2>/dev/null || true
find "$stage/node_modules" -name '*.map' -delete
# tfjs ships several bundles per package; Node loads the *.node.js / cjs ones
find "$stage/node_modules/@tensorflow" -type f \( -name '*.es2017.*' -o -name '*.fesm.*' -o -name '*.min.js' -o -name '*esm*.js' \) -delete 2>/dev/null || true
tar -C "$stage" -cJf .device/node_modules.tar.xz node_modules
tar -C "$(dirname "$(readlink -f "$(command -v node)")")" -cJf .device/node.tar.xz node
rm -rf "$stage"
(cd .device/debs && apt-get -q -oAPT::Architecture=amd64 download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1) \
  || { apt-get update -q >/dev/null && (cd .device/debs && apt-get -q download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1); }
cp ../shared/device/run.sh .device/run.sh
du -sh .device/* | sed 's/^/packed: /'
