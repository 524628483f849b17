"""The ceiling of kernelnotes' non-causal CPU forward, piece by piece.

Times each operation the streamed non-causal forward runs on one cache-sized block (one
head, ``STREAM_BYTES`` of features: 4096 rows at d = 64, 2048 at d = 128), on one thread,
by the thread's CPU time (so that other jobs on the machine count less), and the cost of
writing a fresh output of the size of one call (B 1, H 8, T 4K) against an existing one.
Prints each piece per element of the block, the rate of the two matrix products alone and
of all the pieces together, against ``torch.mm`` measured the same way: the share of the
roofline the algorithm could reach if nothing but these operations ran. Usage::

    PYTHONPATH=. python benchmarks/pieces_cpu_linear.py
"""

from __future__ import annotations

import time

import torch

from kernelnotes.linear.chunked import STREAM_BYTES
from kernelnotes.linear.feature_maps import elu_plus_one


def cpu_seconds(call, repeats: int) -> float:
    """Thread CPU seconds of one call, the median of ``repeats`` after a warm-up."""
    for _ in range(3):
        call()
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        call()
        times.append(time.thread_time() - start)
    return sorted(times)[len(times) // 2]


def report(d: int, g: torch.Generator, peak: float) -> None:
    """Prints the pieces at head dimension ``d`` against ``peak`` GFLOP/s."""
    rows = STREAM_BYTES // (4 * d)
    x, v = (torch.randn(1, rows, d, generator=g) for _ in range(2))
    features = elu_plus_one(x)
    S, z = torch.randn(1, d, d, generator=g), torch.rand(1, d, generator=g)
    numerator, scale = features @ S, torch.rand(1, rows, 1, generator=g)
    out = torch.empty(1, rows, d)
    pieces = {  # name: (call, how many times a block runs it)
        "elu+1 (queries and keys)": (lambda: elu_plus_one(x), 2),
        "keys: S += phi(K)^T V": (lambda: S.baddbmm_(features.mT, v), 1),
        "keys: z += sum phi(K)": (lambda: features.sum(-2), 1),
        "queries: phi(Q) S": (lambda: features @ S, 1),
        "queries: phi(Q) . z": (lambda: torch.linalg.vecdot(features, z[:, None]), 1),
        "normalise into the output": (lambda: torch.mul(numerator, scale, out=out), 1),
    }
    seconds = {name: cpu_seconds(call, 50) * n for name, (call, n) in pieces.items()}
    flops = 4 * rows * d * d
    products = seconds["keys: S += phi(K)^T V"] + seconds["queries: phi(Q) S"]
    print(f"\nd = {d}, a block of {rows} rows (per element of the block):")
    for name, s in seconds.items():
        print(f"  {name:28s} {s / (rows * d) * 1e9:5.2f} ns")
    print(f"  the two products alone: {flops / products / 1e9:.1f} GFLOP/s "
          f"({100 * flops / products / 1e9 / peak:.0f} % of torch.mm)")
    total = sum(seconds.values())
    print(f"  all pieces: {flops / total / 1e9:.1f} GFLOP/s "
          f"({100 * flops / total / 1e9 / peak:.0f} % of torch.mm), of which elu+1 "
          f"{100 * seconds['elu+1 (queries and keys)'] / total:.0f} %")
    size = (8, 4096, d)  # the output of one call at B 1, H 8, T 4K
    existing = torch.empty(size)
    fresh = cpu_seconds(lambda: torch.empty(size).fill_(1.0), 20)
    reused = cpu_seconds(lambda: existing.fill_(1.0), 20)
    print(f"  writing a fresh {existing.numel() * 4 >> 20} MiB output: {fresh * 1e3:.2f} ms, "
          f"an existing one {reused * 1e3:.2f} ms; all pieces of that call "
          f"{total * 8 * 4096 / rows * 1e3:.2f} ms")


def main() -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(1024, 1024, generator=g)
    peak = 2 * 1024**3 / cpu_seconds(lambda: a @ a, 20) / 1e9
    print(f"torch.mm (1024 x 1024, float32, one thread): {peak:.1f} GFLOP/s")
    for d in (64, 128):
        report(d, g, peak)


if __name__ == "__main__":
    main()
