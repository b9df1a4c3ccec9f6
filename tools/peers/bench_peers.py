#!/usr/bin/python3
"""Xception on the CPU in other frameworks, at the same shapes and thread count, side by side.

  pytorch-cpu      Keras' Xception graph in PyTorch (xception_torch.py, TensorFlow 'same' padding),
                   inference (model.eval(), softmax) and a training step (model.train(), cross entropy,
                   SGD with momentum 0.9), random Keras-initialized weights.
  onnxruntime-cpu  ONNX Runtime running an ONNX model written by 'xception export --onnx', inference,
                   through OnnxRunner/ (a .NET console program on the Microsoft.ML.OnnxRuntime package).

Both run with the same intra-op thread count (--threads) and one inter-op thread, on random inputs in
Keras' 'tf' preprocessing range [-1, 1]. PyTorch runs channels-last (NHWC) and, where libjemalloc.so.2 is
installed, on jemalloc keeping freed pages (glibc's malloc hands every block over 32 MB back to the
kernel, and page-faulting the activations in again dominates a 299x299 batch); --memory-format and
--allocator choose otherwise. ONNX Runtime keeps its own memory arena. Each measurement runs --warmup untimed iterations, then
--steps timed iterations, or, without --steps, at least 3 and at least --seconds seconds' worth.

--segments K times the paper's segments variant in PyTorch and in this project (every separable
convolution's spatial 3x3 in K channel groups; ONNX Runtime is not run then).

  python3 tools/peers/bench_peers.py --onnx m.onnx --batch 8 --threads 2
"""

import argparse
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER_DIR = os.path.join(HERE, "OnnxRunner")
RUNNER_DLL = os.path.join(RUNNER_DIR, "bin", "Release", "net10.0", "onnx-runner.dll")

SYSTEM_PYTHON = "/usr/bin/python3"
# jemalloc that keeps freed pages: glibc's malloc returns every block over 32 MB to the kernel at free(),
# so each of PyTorch's large activations is page-faulted in again on every iteration.
JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"


def _argv_value(name):
    for i, a in enumerate(sys.argv):
        if a == name and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def _find_jemalloc():
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"):
        lib = os.path.join(d, "libjemalloc.so.2")
        if os.path.exists(lib):
            return lib
    return None


def _start_again():
    """Runs the script once more with the allocator chosen (LD_PRELOAD acts only at a process' start) and,
    when this python3 lacks torch, with Debian's /usr/bin/python3, which python3-torch installs for."""
    if os.environ.get("BENCH_PEERS_ALLOCATOR"):
        return
    choice = _argv_value("--allocator") or "auto"
    env = dict(os.environ)
    env["BENCH_PEERS_LD_PRELOAD"] = env.get("LD_PRELOAD", "")
    env["BENCH_PEERS_MALLOC_CONF"] = env.get("MALLOC_CONF", "")
    lib = _find_jemalloc() if choice in ("auto", "jemalloc") else None
    if lib:
        env["LD_PRELOAD"] = lib + (":" + env["LD_PRELOAD"] if env.get("LD_PRELOAD") else "")
        env["MALLOC_CONF"] = env.get("MALLOC_CONF") or JEMALLOC_CONF
        env["BENCH_PEERS_ALLOCATOR"] = f"jemalloc ({lib}, MALLOC_CONF={env['MALLOC_CONF']})"
    elif choice == "jemalloc":
        sys.exit("bench_peers: --allocator jemalloc: libjemalloc.so.2 not found (apt-get install libjemalloc2)")
    else:
        env["BENCH_PEERS_ALLOCATOR"] = "glibc malloc" + (
            " (libjemalloc.so.2 not found: apt-get install libjemalloc2)" if choice == "auto" else "")
    python = sys.executable
    if importlib.util.find_spec("torch") is None and os.path.exists(SYSTEM_PYTHON):
        python = SYSTEM_PYTHON
    os.execve(python, [python] + sys.argv, env)


_start_again()
try:
    import torch
except ImportError:
    sys.exit("bench_peers: PyTorch is not installed (apt-get install python3-torch)")

sys.path.insert(0, HERE)
from xception_torch import Xception, check_parameter_counts, parameter_counts  # noqa: E402


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def timed(fn, warmup, steps, seconds):
    """Runs fn warmup times untimed, then steps times (or >= 3 times and >= seconds); returns (s/iter, iters)."""
    for _ in range(warmup):
        fn()
    iters, start = 0, time.perf_counter()
    while True:
        fn()
        iters += 1
        elapsed = time.perf_counter() - start
        if steps is not None:
            if iters >= steps:
                break
        elif iters >= 3 and elapsed >= seconds:
            break
    return elapsed / iters, iters


def line(peer, what, args, sec_per_batch, iters):
    return (f"{peer} {what:<10} batch {args.batch}  {args.image_size}x{args.image_size}  threads {args.threads}: "
            f"{args.batch / sec_per_batch:.2f} img/s ({sec_per_batch * 1000:.0f} ms/batch, {iters} iterations)")


def bench_torch(args, passes):
    torch.manual_seed(0)
    model = Xception(segments=args.segments)
    if args.segments:
        total, trainable = parameter_counts(model)
        what = f"Xception in {args.segments} segments"
    else:
        total, trainable = check_parameter_counts(model)
        what = "Keras' Xception"
    print(f"pytorch model: {what}, {total:,} parameters ({trainable:,} trainable), {args.memory_format}")
    fmt = torch.channels_last if args.memory_format == "channels-last" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = (torch.rand(args.batch, 3, args.image_size, args.image_size) * 2 - 1).contiguous(memory_format=fmt)
    results = []

    if "inference" in passes:
        model.eval()

        def infer():
            with torch.inference_mode():
                torch.softmax(model(x), dim=1)

        sec, iters = timed(infer, args.warmup, args.steps, args.seconds)
        results.append(line("pytorch-cpu", "inference", args, sec, iters))
        print(results[-1], flush=True)

    if "training" in passes:
        model.train()
        labels = torch.randint(0, 1000, (args.batch,))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), labels)
            loss.backward()
            opt.step()

        sec, iters = timed(step, args.warmup, args.steps, args.seconds)
        results.append(line("pytorch-cpu", "training", args, sec, iters))
        print(results[-1], flush=True)
    return results


def original_env():
    """The environment without the allocator chosen for PyTorch: ONNX Runtime runs with its own arena."""
    env = dict(os.environ)
    for var in ("LD_PRELOAD", "MALLOC_CONF"):
        env[var] = os.environ.get("BENCH_PEERS_" + var, "")
        if not env[var]:
            del env[var]
    return env


def runner_command(args):
    if args.runner:
        return [args.runner] if not args.runner.endswith(".dll") else ["dotnet", args.runner]
    if not os.path.exists(RUNNER_DLL):
        if shutil.which("dotnet") is None:
            sys.exit("bench_peers: ONNX Runtime needs the .NET SDK (dotnet) for OnnxRunner/")
        print(f"building {os.path.relpath(RUNNER_DIR)} (dotnet build -c Release)", flush=True)
        subprocess.run(["dotnet", "build", "-c", "Release", "--nologo", "-v", "q", RUNNER_DIR], check=True,
                       stdout=subprocess.DEVNULL, env=original_env())
    return ["dotnet", RUNNER_DLL]


def bench_onnxruntime(args):
    cmd = runner_command(args) + [
        "--onnx", args.onnx, "--batch", str(args.batch), "--image-size", str(args.image_size),
        "--threads", str(args.threads), "--warmup", str(args.warmup),
    ]
    cmd += ["--min-iters", str(args.steps), "--seconds", "0"] if args.steps is not None \
        else ["--seconds", str(args.seconds)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=original_env())
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(f"bench_peers: the ONNX Runtime run failed (exit {proc.returncode})")
    out = proc.stdout.strip().splitlines()
    for text in out:
        print(text, flush=True)
    return [t for t in out if t.startswith("onnxruntime-cpu")]


def bench_xception(args, passes):
    """This project's own figures in the same run: 'xception bench --model xception' on the CPU accelerator."""
    cmd = args.xception.split() + [
        "bench", "--model", "xception", "--device", "cpu", "--cpu-threads", str(args.threads),
        "--batch", str(args.batch), "--image-size", str(args.image_size),
        "--pass", "both" if len(passes) == 2 else next(iter(passes)), "--min-seconds", str(args.seconds),
    ] + (["--segments", str(args.segments)] if args.segments else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=original_env())
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        sys.exit(f"bench_peers: the xception run failed (exit {proc.returncode})")
    out = proc.stdout.strip().splitlines()
    for text in out:
        print(text, flush=True)
    return [t for t in out if t.startswith("xception ")]


def images_per_second(lines, prefix):
    for text in lines:
        if text.startswith(prefix):
            return float(text.split(": ", 1)[1].split(" img/s")[0])
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=8, help="images per batch (default 8)")
    p.add_argument("--image-size", type=int, default=299, help="input height and width (default 299; 71 at least)")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help=f"intra-op threads for every peer (default: the CPU count, {os.cpu_count()})")
    p.add_argument("--steps", type=int, default=None,
                   help="timed iterations per measurement (default: at least 3 and at least --seconds)")
    p.add_argument("--seconds", type=float, default=10.0, help="least timed seconds without --steps (default 10)")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations first (default 1)")
    p.add_argument("--onnx", help="an ONNX model written by 'xception export --onnx' (without it, PyTorch only)")
    p.add_argument("--pass", dest="passes", choices=["inference", "training", "both"], default="both",
                   help="inference, training (PyTorch only) or both (default)")
    p.add_argument("--memory-format", choices=["channels-last", "nchw"], default="channels-last",
                   help="PyTorch's activations and weights: channels-last (NHWC, default) or nchw")
    p.add_argument("--allocator", choices=["auto", "jemalloc", "glibc"], default="auto",
                   help="PyTorch's process: jemalloc keeping freed pages (auto: when libjemalloc.so.2 is "
                        "installed) or glibc's malloc")
    p.add_argument("--xception", help="the xception command to time alongside, e.g. 'dotnet "
                   "tools/Xception.Gpu.Cli/bin/Release/net10.0/xception.dll' (default: none)")
    p.add_argument("--segments", type=int, default=0,
                   help="the segments variant: every separable 3x3 in K channel groups (default 0: depthwise)")
    p.add_argument("--runner", help="OnnxRunner's onnx-runner.dll or executable (default: built from OnnxRunner/)")
    args = p.parse_args()
    if args.batch < 1 or args.threads < 1 or args.image_size < 71 or (args.steps is not None and args.steps < 1):
        p.error("--batch, --threads and --steps must be positive, --image-size at least 71")
    if args.segments < 0:
        p.error("--segments must be 0 (depthwise) or a positive group count")
    if args.segments and args.onnx:
        p.error("--segments times PyTorch and this project only: leave out --onnx")
    if args.onnx and not os.path.isfile(args.onnx):
        p.error(f"--onnx {args.onnx}: no such file")
    passes = {"inference", "training"} if args.passes == "both" else {args.passes}

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    print(f"cpu: {cpu_model()} ({os.cpu_count()} logical CPUs)")
    print(f"torch {torch.__version__} (python {platform.python_version()}, {torch.get_num_threads()} threads)")
    print(f"pytorch allocator: {os.environ.get('BENCH_PEERS_ALLOCATOR', 'glibc malloc')}")
    print(f"load average before: {load_average()} (other work on the CPUs slows every peer)")

    lines = []
    if args.xception:
        lines += bench_xception(args, passes)
    if args.onnx and "inference" in passes:
        lines += bench_onnxruntime(args)
    lines += bench_torch(args, passes)
    if not args.onnx:
        print("onnxruntime-cpu: skipped (no --onnx)")

    print()
    print(f"summary (load average after: {load_average()})")
    for text in lines:
        print("  " + text)
    ours = {p: images_per_second(lines, f"xception {p}") for p in ("inference", "training")}
    peers = [("onnxruntime-cpu", "inference"), ("pytorch-cpu", "inference"), ("pytorch-cpu", "training")]
    for peer, what in peers:
        theirs = images_per_second(lines, f"{peer} {what}")
        if ours.get(what) and theirs:
            print(f"  xception / {peer} {what}: {ours[what] / theirs:.2f}x")


if __name__ == "__main__":
    main()
