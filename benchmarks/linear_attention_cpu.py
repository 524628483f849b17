"""CPU linear attention against the implementations a practitioner would pick instead.

Every method computes the same thing: elu+1 features, then normalised linear attention,
causal or not, forward or forward plus backward, in float32 on one thread. One run times all
methods at every size, interleaved (each repeat visits every method in turn), so the ratios
compare like with like on a shared machine. Writes ``benchmarks/results/cpu_linear.md`` and
``.csv`` with the hardware, versions and date. Usage::

    PYTHONPATH=.:/path/to/peers python benchmarks/linear_attention_cpu.py [--quick]

Peers (each run only if it imports; none is a requirement of kernelnotes):

``einsum``
    the hand-written form: ``einsum`` of the features, non-causal; causal as the cumulative
    sum of outer products ``phi(k_j) v_j^T``, which holds a ``T x d x d`` tensor (run while
    it stays under 2 GiB).
``performer``
    performer-pytorch 1.1.4: ``linear_attention`` (non-causal) and
    ``causal_linear_attention_noncuda`` (causal, 128 chunks).
``fla naive``
    flash-linear-attention's pure-torch chunked reference ``naive_chunk_linear_attn`` with
    ``normalize=True`` (causal; its other paths are Triton kernels that need a GPU).

FLOPs: the algorithm's minimum, ``4 T d dv + 4 T d`` per head (the two products with the
state and the denominators), causal or not; the fraction reported is that rate against this
CPU's ``torch.mm`` rate, measured in the same run (linear attention moves 16-32 FLOPs per
byte, so on this CPU it is bound by arithmetic, not memory).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import kernelnotes
from kernelnotes import linear_attention

RESULTS = Path(__file__).resolve().parent / "results"
EPS = 1e-6


def phi(x):
    return F.elu(x) + 1


def einsum_attention(q, k, v, causal):
    fq, fk = phi(q), phi(k)
    if not causal:
        state = torch.einsum("...td,...te->...de", fk, v)
        num = torch.einsum("...td,...de->...te", fq, state)
        return num / (torch.einsum("...td,...d->...t", fq, fk.sum(-2))[..., None] + EPS)
    states = torch.einsum("...td,...te->...tde", fk, v).cumsum(-3)
    num = torch.einsum("...td,...tde->...te", fq, states)
    return num / (torch.einsum("...td,...td->...t", fq, fk.cumsum(-2))[..., None] + EPS)


def peers() -> dict:
    """name -> (function(q, k, v, causal) or None where it does not apply, version)."""
    table = {"einsum": (einsum_attention, torch.__version__)}
    try:
        import performer_pytorch
        from performer_pytorch.performer_pytorch import (
            causal_linear_attention_noncuda,
        )
        from performer_pytorch.performer_pytorch import linear_attention as performer_plain

        def performer(q, k, v, causal):
            fq, fk = phi(q), phi(k)
            if causal:
                return causal_linear_attention_noncuda(fq, fk, v, eps=EPS)
            return performer_plain(fq, fk, v)

        from importlib.metadata import version
        table["performer"] = (performer, version("performer-pytorch"))
        del performer_pytorch
    except ImportError as error:
        print(f"performer-pytorch not run: {error}")
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Triton is not supported on current platform"
            import fla
            from fla.ops.linear_attn.naive import naive_chunk_linear_attn

        def fla_naive(q, k, v, causal):
            if not causal:
                return None
            # fla's layout is (B, T, H, d)
            out = naive_chunk_linear_attn(*(x.transpose(1, 2) for x in (phi(q), phi(k), v)),
                                          scale=1.0, normalize=True)
            return out.transpose(1, 2)

        table["fla naive"] = (fla_naive, fla.__version__)
    except ImportError as error:
        print(f"flash-linear-attention not run: {error}")
    return table


def mm_gflops(repeats: int = 5) -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    best = min(_time(lambda: a @ b) for _ in range(repeats))
    return 2 * 1024 ** 3 / best / 1e9


def _time(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


#: a peer whose call took longer than this is not run at larger sizes of the same kind
SLOW_S = 10.0


def run(quick: bool) -> tuple[list[dict], float, dict]:
    methods = {"kernelnotes": (lambda q, k, v, c: linear_attention(q, k, v, causal=c),
                               kernelnotes.__version__), **peers()}
    sizes = [(b, t, d) for d in (64, 128) for t in (1024, 4096, 16384) for b in (1, 8)
             if b == 1 or t <= 4096]
    sizes.sort(key=lambda size: size[0] * size[1] * size[2] ** 2)  # small work first
    if quick:
        sizes = [(1, 1024, 64), (1, 4096, 64)]
    rows = []
    peak = mm_gflops()
    too_slow = set()  # (method, causal, backward)
    for batch, seq, d in sizes:
        g = torch.Generator().manual_seed(seq + d + batch)
        q, k, v = (torch.randn(batch, 8, seq, d, generator=g) for _ in range(3))
        flops = batch * 8 * (4 * seq * d * d + 4 * seq * d)
        for causal in (False, True):
            for backward in (False, True):
                runnable = {
                    name: function for name, (function, _) in methods.items()
                    if (name, causal, backward) not in too_slow
                    # the hand-written causal cumsum holds T x d x d: skip above 2 GiB
                    and not (name == "einsum" and causal and batch * 8 * seq * d * d * 4 > 2**31)}
                times = {name: [] for name in runnable}
                order = list(runnable)
                for repeat in range(10):  # interleaved: every method once per repeat,
                    for name in order[repeat % len(order):] + order[:repeat % len(order)]:
                        function = runnable[name]  # starting with a different one each time
                        if repeat and (len(times[name]) < repeat or sum(times[name]) > 3.0):
                            continue  # not applicable, or timed long enough
                        elapsed = _measure(function, q, k, v, causal, backward)
                        if elapsed is not None:
                            times[name].append(elapsed)
                best = {name: min(t) for name, t in times.items() if t}
                too_slow |= {(name, causal, backward) for name, t in best.items()
                             if t > SLOW_S and name != "kernelnotes"}
                peak = max(peak, mm_gflops(1))
                fastest_peer = min((t for n, t in best.items() if n != "kernelnotes"),
                                   default=float("nan"))
                for name, seconds in best.items():
                    work = flops * (3 if backward else 1)  # backward: about twice the forward
                    rows.append({
                        "method": name, "batch": batch, "heads": 8, "seq": seq, "dim": d,
                        "causal": causal, "pass": "fwd+bwd" if backward else "fwd",
                        "ms": round(seconds * 1e3, 2), "repeats": len(times[name]),
                        "GFLOP/s": round(work / seconds / 1e9, 2),
                        "vs fastest peer": round(fastest_peer / best["kernelnotes"], 2)
                        if name == "kernelnotes" else "",
                    })
                print(f"B={batch} T={seq} d={d} causal={causal} bwd={backward}: "
                      + ", ".join(f"{n} {t * 1e3:.1f} ms" for n, t in best.items()), flush=True)
    for row in rows:
        row["% of mm"] = round(100 * row["GFLOP/s"] / peak, 1)
    return rows, peak, {name: ver for name, (_, ver) in methods.items()}


def _measure(function, q, k, v, causal, backward):
    if backward:
        q, k, v = (x.detach().requires_grad_() for x in (q, k, v))

        def call():
            out = function(q, k, v, causal)
            if out is not None:
                out.sum().backward()
            return out
    else:
        def call():
            with torch.no_grad():
                return function(q, k, v, causal)
    start = time.perf_counter()
    out = call()
    elapsed = time.perf_counter() - start
    return None if out is None else elapsed


def write(rows, peak, versions, quick: bool) -> None:
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / ("cpu_linear_quick" if quick else "cpu_linear")
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    columns = list(rows[0])
    lines = [
        "# Linear attention on CPU against its peers",
        "",
        f"- Date (UTC): {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M}",
        f"- CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores; "
        f"torch threads: {torch.get_num_threads()}",
        f"- Versions: python {platform.python_version()}, "
        + ", ".join(f"{n} {v}" for n, v in versions.items()),
        f"- torch.mm (1024 x 1024, float32) measured in this run: {peak:.1f} GFLOP/s",
        "- Caveat: the machine was shared with other jobs while this ran; times are the best of "
        "up to 10 interleaved repeats (fewer once a method has run 3 s), and the ratios (same "
        f"moment, same load) are more reliable than the absolute times. A peer slower than "
        f"{SLOW_S:.0f} s per call is not run at larger sizes. fast-transformers' compiled "
        "kernel was not built (no time).",
        "- `vs fastest peer`: the fastest peer's time over kernelnotes' (above 1: kernelnotes "
        "is faster). `% of mm`: the algorithm's minimum FLOPs per second against torch.mm.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.md and .csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two sizes only (a smoke test)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, peak, versions = run(args.quick)
    write(rows, peak, versions, args.quick)


if __name__ == "__main__":
    main()
