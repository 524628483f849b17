"""Where the time of ``kernelnotes.linear_attention`` goes on CPU: a torch.profiler summary.

For each size (batch 1, 8 heads, float32, forward without autograd, one thread by default)
prints the best time of a few calls, the rate of the algorithm's minimum FLOPs (as in
``linear_attention_cpu.py``) against ``torch.mm``, and the operators that take the most time
in one profiled call, grouped into what they do. Usage::

    PYTHONPATH=. python benchmarks/profile_cpu_linear.py [--seqs 4096 16384] [--dims 64 128]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from kernelnotes import linear_attention

#: operator name -> what it does in kernelnotes' torch backend (``mul`` is both the
#: normalisation written into the output and half of ``linalg.vecdot``); everything inside
#: the elu+1 Function (``_EluPlusOne``) counts as elu+1
GROUPS = {
    "aten::bmm": "matrix products", "aten::baddbmm_": "matrix products",
    "aten::mm": "matrix products",
    "aten::mul": "normaliser and output", "aten::reciprocal_": "normaliser and output",
    "aten::mul_": "normaliser and output", "aten::add_": "normaliser and output",
    "aten::copy_": "copies (values, blocks into the output)",
    "aten::sum": "sums", "aten::tril_": "causal mask",
}


def add_times(event, groups: dict[str, float]) -> None:
    """Adds the self time of ``event`` and its children to their groups in ``groups``."""
    if event.name == "_EluPlusOne":
        groups["elu+1"] = groups.get("elu+1", 0.0) + event.cpu_time_total
        return
    name = GROUPS.get(event.name, "other")
    groups[name] = groups.get(name, 0.0) + event.self_cpu_time_total
    for child in event.cpu_children:
        add_times(child, groups)


def best_ms(call, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def mm_gflops() -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    return 2 * 1024 ** 3 / best_ms(lambda: a @ b) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seqs", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = mm_gflops()
    print(f"torch.mm: {peak:.1f} GFLOP/s on {args.threads} thread(s)")
    for seq in args.seqs:
        for d in args.dims:
            g = torch.Generator().manual_seed(seq + d)
            q, k, v = (torch.randn(1, 8, seq, d, generator=g) for _ in range(3))
            flops = 8 * (4 * seq * d * d + 4 * seq * d)
            for causal in (False, True):
                def call(causal=causal, q=q, k=k, v=v):
                    return linear_attention(q, k, v, causal=causal)

                with torch.no_grad():
                    ms = best_ms(call)
                    with profile(activities=[ProfilerActivity.CPU]) as prof:
                        call()
                groups: dict[str, float] = {}
                for event in prof.events():
                    if event.cpu_parent is None:
                        add_times(event, groups)
                total = sum(groups.values())
                share = ", ".join(f"{name} {100 * t / total:.0f} %" for name, t in
                                  sorted(groups.items(), key=lambda item: -item[1]))
                print(f"T={seq} d={d} causal={causal}: {ms:.1f} ms, "
                      f"{flops / ms / 1e6:.1f} GFLOP/s = {100 * flops / ms / 1e6 / peak:.0f} % "
                      f"of mm; profiled call {total / 1e3:.1f} ms: {share}", flush=True)


if __name__ == "__main__":
    main()
