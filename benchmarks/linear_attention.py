"""Time and peak memory of softmax attention and linear attention as the sequence grows.

One run times every method at every sequence length, so the ratios compare like with like
(same machine, same load, same moment). Writes ``benchmarks/results/<device>.md`` and
``.csv``, with the hardware, the versions and the date. Usage (see benchmarks/README.md)::

    python benchmarks/linear_attention.py                 # CPU, and CUDA when present
    python benchmarks/linear_attention.py --device cuda --dtype bfloat16 --batch 4 --heads 16

Methods: PyTorch's fused ``scaled_dot_product_attention`` ("sdpa"), softmax attention
written out (``kernelnotes.softmax_attention``, the quadratic softmax reference), and
``kernelnotes.linear_attention`` with its quadratic, recurrent, torch and (on CUDA) Triton
backends, each non-causal and causal. Peak memory is the extra memory of one call: on CUDA
from the allocator's statistics, on CPU from ``kernelnotes.measure.peak_memory`` (tensor
storage only: the buffers inside SDPA's fused CPU kernel are not tensors and are not seen,
so its CPU entry is left blank).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import functools
import math
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kernelnotes import linear_attention, softmax_attention
from kernelnotes.measure import best_time, peak_memory

RESULTS = Path(__file__).resolve().parent / "results"
REFERENCE = "softmax (explicit)"


def methods(device: str) -> dict:
    """name -> (function(q, k, v, causal), kind); kind sets the length limit."""
    table = {
        "sdpa": (lambda q, k, v, c: F.scaled_dot_product_attention(q, k, v, is_causal=c),
                 "fused"),
        REFERENCE: (lambda q, k, v, c: softmax_attention(q, k, v, causal=c)[0], "quadratic"),
        "linear quadratic": (lambda q, k, v, c: linear_attention(
            q, k, v, causal=c, backend="quadratic"), "quadratic"),
        "linear recurrent": (lambda q, k, v, c: linear_attention(
            q, k, v, causal=c, backend="recurrent"), "loop"),
        "linear torch": (lambda q, k, v, c: linear_attention(
            q, k, v, causal=c, backend="torch"), "linear"),
    }
    if device == "cuda":
        table["linear triton"] = (lambda q, k, v, c: linear_attention(
            q, k, v, causal=c, backend="triton"), "linear")
    return table


def peak_bytes(fn, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        out = fn()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        del out
        return float(peak)
    return float(peak_memory(fn)[1])


def hardware(device: str) -> str:
    if device == "cuda":
        return f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            model = next(line.split(":", 1)[1].strip() for line in info
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{model}, {os.cpu_count()} logical cores, torch using "
            f"{torch.get_num_threads()} thread(s)")


def versions() -> str:
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "not installed"
    return (f"Python {platform.python_version()}, torch {torch.__version__}, "
            f"triton {triton_version}, numpy {np.__version__}")


def run(device: str, args) -> list[dict]:
    dtype = getattr(torch, args.dtype or ("float32" if device == "cpu" else "bfloat16"))
    batch = args.batch or (1 if device == "cpu" else 4)
    heads = args.heads or (1 if device == "cpu" else 16)
    seqs = args.seqs or ([256, 512, 1024, 2048, 4096, 8192, 16384] if device == "cpu"
                         else [1024, 2048, 4096, 8192, 16384, 32768])
    limits = {"fused": math.inf, "linear": math.inf,
              "loop": args.max_recurrent_seq,
              "quadratic": args.max_quadratic_seq or (8192 if device == "cpu" else 16384)}
    rows = []
    generator = torch.Generator().manual_seed(0)
    for seq in seqs:
        q, k, v = (torch.randn(batch, heads, seq, args.dim, generator=generator)
                   .to(device, dtype) for _ in range(3))
        for causal in (False, True):
            times = {}
            for name, (fn, kind) in methods(device).items():
                if seq > limits[kind]:
                    continue
                with torch.no_grad():
                    call = functools.partial(fn, q, k, v, causal)
                    first = best_time(call, repeat=1)  # warm-up (and Triton compilation)
                    repeat = args.repeat if first < 1.0 else max(1, args.repeat // 2)
                    seconds = min(first, best_time(call, repeat=repeat))
                    memory = peak_bytes(call, device)
                times[name] = seconds
                rows.append({"device": device, "method": name, "causal": causal, "seq": seq,
                             "batch": batch, "heads": heads, "dim": args.dim,
                             "dtype": str(dtype).removeprefix("torch."),
                             "time_ms": seconds * 1e3,
                             "peak_mb": None if (device == "cpu" and name == "sdpa")
                             else memory / 2**20})
                print(f"{device} seq={seq:6d} causal={causal!s:5} {name:20s} "
                      f"{seconds * 1e3:10.3f} ms", flush=True)
            for row in rows[-len(times):]:
                row["x_vs_sdpa"] = times["sdpa"] / times[row["method"]]
                ref = times.get(REFERENCE)
                row["x_vs_softmax"] = None if ref is None else ref / times[row["method"]]
    return rows


def slope(rows, method, causal, key) -> float | None:
    """Fitted log-log slope of ``key`` against seq: 1 is linear, 2 quadratic."""
    points = [(r["seq"], r[key]) for r in rows
              if r["method"] == method and r["causal"] == causal and r[key]]
    if len(points) < 3:
        return None
    seq, value = np.log(np.array(points, dtype=float)).T
    return float(np.polyfit(seq, value, 1)[0])


def fmt(value, digits=3) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def write(device: str, rows: list[dict], args) -> Path:
    RESULTS.mkdir(exist_ok=True)
    name = "cpu" if device == "cpu" else "cuda-" + "-".join(
        torch.cuda.get_device_name().lower().replace("nvidia", "").split())
    columns = ["method", "causal", "seq", "time_ms", "x_vs_sdpa", "x_vs_softmax", "peak_mb"]
    with open(RESULTS / f"{name}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    first = rows[0]
    lines = [
        f"# Linear attention benchmark: {device}",
        "",
        f"- hardware: {hardware(device)}",
        f"- versions: {versions()}",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- command: `python {' '.join(sys.argv)}` "
        f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})",
        f"- shape: batch {first['batch']}, heads {first['heads']}, head dim {first['dim']}, "
        f"{first['dtype']}; forward only, no gradients; fastest of {args.repeat + 1} calls, "
        f"the first a warm-up ({max(1, args.repeat // 2) + 1} when one takes over 1 s)",
        "- `x_vs_sdpa`, `x_vs_softmax`: how many times faster than PyTorch SDPA and than "
        "softmax attention written out, timed in the same run",
        "",
        "## Summary",
        "",
    ]
    at = [r for r in rows if r["method"] == "linear torch" and not r["causal"]
          and r["seq"] == 8192 and r["x_vs_softmax"]]
    if at:
        lines.append(f"- non-causal linear attention (torch backend) at seq 8192, dim "
                     f"{first['dim']}: {at[0]['x_vs_softmax']:.0f}x faster than the quadratic "
                     f"softmax reference, {at[0]['x_vs_sdpa']:.0f}x faster than SDPA")
    for method in ("sdpa", REFERENCE, "linear torch", "linear triton"):
        for causal in (False, True):
            t, m = slope(rows, method, causal, "time_ms"), slope(rows, method, causal, "peak_mb")
            if t is None:
                continue
            memory = "" if m is None else f", peak memory slope {m:.2f}"
            lines.append(f"- {method}, {'causal' if causal else 'non-causal'}: log-log time "
                         f"slope {t:.2f}{memory} (1 = linear, 2 = quadratic in seq)")
    lines += ["", "## All measurements", "",
              "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r[c]) for c in columns) + " |")
    path = RESULTS / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", action="append", choices=["cpu", "cuda"],
                        help="repeatable; default: cpu, and cuda when available")
    parser.add_argument("--seqs", type=int, nargs="+", help="sequence lengths")
    parser.add_argument("--dim", type=int, default=64, help="head dimension (default 64)")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--heads", type=int)
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"],
                        help="default: float32 on CPU, bfloat16 on CUDA")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--max-quadratic-seq", type=int,
                        help="longest sequence for the methods that build the seq x seq "
                             "matrix (default 8192 on CPU, 16384 on CUDA)")
    parser.add_argument("--max-recurrent-seq", type=int, default=2048)
    args = parser.parse_args(argv)
    devices = args.device or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        path = write(device, run(device, args), args)
        print(f"wrote {path} and {path.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
