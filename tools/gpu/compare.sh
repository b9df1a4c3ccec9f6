#!/usr/bin/env bash
# The first run on a CUDA GPU: the CUDA tests, then Xception's whole-model benchmark at fp32, tf32 and bf16
# beside PyTorch's on the same GPU (fp32 with TF32 off, TF32, bf16 autocast), and the ratios. Needs no .NET SDK:
# give it the self-contained command (dotnet publish tools/Xception.Gpu.Cli -c Release -p:PublishProfile=linux-x64)
# and, optionally, the published test executable (an xunit v3 project is one). About 10 minutes on an H100.
#
# Usage:  bash tools/gpu/compare.sh XCEPTION [TESTS]
#   XCEPTION  the xception command, e.g. ./publish/xception or "dotnet path/to/xception.dll"
#   TESTS     the test executable (e.g. "dotnet path/to/Xception.Gpu.Tests.dll"): runs the op and precision tests,
#             whose CUDA cases skip everywhere else
# Environment: BATCH (32), SIZE (299), SECONDS_EACH per measurement (10), PYTHON (python3, with torch and CUDA).
set -uo pipefail
[ $# -ge 1 ] || { sed -n '2,12p' "$0"; exit 2; }
xception=$1
tests=${2:-}
batch=${BATCH:-32} size=${SIZE:-299} seconds=${SECONDS_EACH:-10}
python=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || { echo "compare: no NVIDIA GPU (nvidia-smi failed)" >&2; exit 1; }
$xception devices

if [ -n "$tests" ]; then
  echo "== CUDA tests (ops and precision)"
  timeout 300 $tests -namespace Xception.Gpu.Tests.Ops 2>&1 | tail -n 25
fi

echo "== xception bench --model xception, batch $batch, ${size}x${size}"
for p in fp32 tf32 bf16; do
  timeout 200 $xception bench --model xception --device cuda --batch "$batch" --image-size "$size" \
    --min-seconds "$seconds" --precision "$p" 2>&1 | tee "$out/xception-$p.txt" | grep -E "img/s|error"
done

echo "== PyTorch on the same GPU"
timeout 240 "$python" - "$here/../peers" "$batch" "$size" "$seconds" > "$out/torch.txt" <<'PY'
import sys, time, torch
sys.path.insert(0, sys.argv[1])
from xception_torch import Xception
batch, size, seconds = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
dev = torch.device("cuda")
model = Xception().to(dev).to(memory_format=torch.channels_last)
x = torch.rand(batch, 3, size, size, device=dev).mul_(2).sub_(1).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 1000, (batch,), device=dev)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
def timed(step):
    step(); torch.cuda.synchronize()
    n, t0 = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - t0 < seconds:
        step(); n += 1
    torch.cuda.synchronize()
    return batch * n / (time.perf_counter() - t0)
for name, tf32, bf16 in [("fp32", False, False), ("tf32", True, False), ("bf16", True, True)]:
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    def infer():
        model.eval()
        with torch.no_grad(), torch.autocast("cuda", torch.bfloat16, enabled=bf16):
            model(x).softmax(1)
    def train():
        model.train()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward(); opt.step()
    print(f"{name} inference {timed(infer):.2f}")
    print(f"{name} training {timed(train):.2f}")
PY
cat "$out/torch.txt"

echo "== ratios (xception / PyTorch, images per second, same GPU, batch $batch, ${size}x${size})"
for p in fp32 tf32 bf16; do
  for pass in inference training; do
    ours=$(grep -E "^xception $pass " "$out/xception-$p.txt" | grep -oE '[0-9.]+ img/s' | cut -d' ' -f1)
    theirs=$(grep -E "^$p $pass " "$out/torch.txt" | cut -d' ' -f3)
    if [ -n "$ours" ] && [ -n "$theirs" ]; then
      awk -v p="$p" -v s="$pass" -v a="$ours" -v b="$theirs" 'BEGIN { printf "%-5s %-9s xception %9.2f  pytorch %9.2f  ratio %.2f\n", p, s, a, b, a / b }'
    else
      echo "$p $pass: missing figure (xception '${ours:-}', pytorch '${theirs:-}')"
    fi
  done
done
rm -rf "$out"
