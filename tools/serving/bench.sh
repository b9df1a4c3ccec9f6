#!/usr/bin/env bash
# The serving benchmark of the README: `xception serve` on this machine's CPU (or --device D), measured by
# `xception serve-bench` at concurrency 1, 2, 4, 8 and 16 with dynamic batching (--max-batch-size 8) and without
# (--max-batch-size 1), for the mini model (32 x 32) and the full model (299 x 299). Writes serving-*.csv,
# serving-mini.png and serving-full.png into the output folder (default tools/serving).
#
#   bash tools/serving/bench.sh [--device cpu] [--out DIR] [--xception "dotnet path/to/xception.dll"]
#
# The weights are those of a one-epoch run on synthetic images: speed does not depend on what they learned.
set -euo pipefail
cd "$(dirname "$0")/../.."
device=cpu out=tools/serving xception=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --xception) xception=$2; shift 2 ;;
    *) echo "bench.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ -z "$xception" ]; then
  dotnet build tools/Xception.Gpu.Cli -c Release -v q -nologo >/dev/null
  xception="dotnet tools/Xception.Gpu.Cli/bin/Release/net10.0/xception.dll"
fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$out"

echo "weights: one epoch on synthetic images ..."
$xception train --data synthetic:64 --epochs 1 --batch 32 --device "$device" --save "$work/mini.safetensors" --checkpoint-dir "$work/run-mini" >/dev/null
$xception train --model xception --data synthetic:8 --epochs 1 --batch 8 --device "$device" --save "$work/full.safetensors" --checkpoint-dir "$work/run-full" >/dev/null

port=18080
# run NAME WEIGHTS REQUESTS LABEL SERVE-OPTIONS...
run() {
  local name=$1 weights=$2 requests=$3 label=$4; shift 4
  local log="$work/serve-$name.log"
  $xception serve --weights "$weights" --device "$device" --no-features --urls "http://127.0.0.1:$port" "$@" >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 300); do grep -q "serve: ready" "$log" && break; kill -0 $pid 2>/dev/null || { cat "$log"; exit 1; }; sleep 1; done
  echo "== $label"
  $xception serve-bench --url "http://127.0.0.1:$port" --requests "$requests" --csv "$out/serving-$name.csv" --label "$label"
  kill -TERM $pid
  wait $pid
}
rm -f "$out"/serving-*.csv
run mini-batching "$work/mini.safetensors" 400 "mini 32x32 batching (max 8)" --max-batch-size 8
run mini-batch1 "$work/mini.safetensors" 400 "mini 32x32 max-batch-size 1" --max-batch-size 1
run full-batching "$work/full.safetensors" 64 "full 299x299 batching (max 8)" --max-batch-size 8
run full-batch1 "$work/full.safetensors" 64 "full 299x299 max-batch-size 1" --max-batch-size 1
$xception serve-bench --plot "$out/serving-mini.png" "$out"/serving-mini-*.csv
$xception serve-bench --plot "$out/serving-full.png" "$out"/serving-full-*.csv
