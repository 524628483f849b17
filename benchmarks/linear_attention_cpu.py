"""CPU linear attention against the implementations a practitioner would pick instead.

Every method computes the same thing: elu+1 features, then normalised linear attention,
causal or not, forward or forward plus backward, in float32 on 1 (and 2) threads. One run
times all methods at every size, interleaved (each repeat visits every method in turn), so
the ratios compare like with like on a shared machine. Writes
``benchmarks/results/cpu_linear.md`` and ``.csv`` with the hardware, versions and date. Usage::

    PYTHONPATH=.:/path/to/peers python benchmarks/linear_attention_cpu.py [--threads 1 2]

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
``fast-transformers``
    fast-transformers 0.4.0 as its attention layers compute it: causal, its compiled CPU
    ``causal_dot_product`` for the numerator and ``1 / (phi(Q) . cumsum(phi(K)) + eps)``
    for the normaliser (``CausalLinearAttention``); non-causal, the three ``einsum`` of its
    ``LinearAttention``. The inputs are passed in the kernel's own ``(N, H, L, E)`` layout,
    so the layer's permutes and copies are left out.

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
    try:
        import fast_transformers
        from fast_transformers.causal_product import causal_dot_product

        def fast_transformers_attention(q, k, v, causal):
            fq, fk = phi(q), phi(k)
            if causal:  # CausalLinearAttention.forward, in (N, H, L, E)
                norm = 1 / (torch.einsum("nhli,nhli->nhl", fq, fk.cumsum(2)) + EPS)
                return causal_dot_product(fq, fk, v) * norm[..., None]
            kv = torch.einsum("nhsd,nhsm->nhmd", fk, v)  # LinearAttention.forward
            norm = 1 / (torch.einsum("nhld,nhd->nhl", fq, fk.sum(dim=2)) + EPS)
            return torch.einsum("nhld,nhmd,nhl->nhlm", fq, kv, norm)

        table["fast-transformers"] = (fast_transformers_attention,
                                      fast_transformers.__version__)
    except ImportError as error:
        print(f"fast-transformers not run: {error}")
    return table


def mm_gflops(repeats: int = 5) -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    best = min(_time(lambda: a @ b) for _ in range(repeats))
    return 2 * 1024 ** 3 / best / 1e9


def _time(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


#: default of --slow: a peer expected to take longer than this per call (from its rate at a
#: smaller size of the same kind) is not run
SLOW_S = 10.0

#: the sizes (batch, seq, head dim): batch 8 up to 4K, batch 1 up to 32K
SIZES = [(b, t, d) for d in (64, 128) for t in (1024, 4096, 16384, 32768) for b in (1, 8)
         if b == 1 or t <= 4096]


def run(threads: int, sizes, repeats: int, budget_s: float, slow_s: float, methods: dict,
        deadline: float) -> tuple[list[dict], float, list]:
    """Time every method at every size on ``threads`` threads, starting no size after
    ``deadline`` (a ``time.perf_counter`` value): (rows, torch.mm GFLOP/s, sizes left out)."""
    torch.set_num_threads(threads)
    rows = []
    peak = mm_gflops()
    seconds_per_flop = {}  # (method, causal, backward) -> best time per FLOP so far
    sizes = sorted(sizes, key=lambda size: size[0] * size[1] * size[2] ** 2)
    for i, (batch, seq, d) in enumerate(sizes):
        if time.perf_counter() > deadline:
            return _with_shares(rows, peak), peak, sizes[i:]
        g = torch.Generator().manual_seed(seq + d + batch)
        q, k, v = (torch.randn(batch, 8, seq, d, generator=g) for _ in range(3))
        flops = batch * 8 * (4 * seq * d * d + 4 * seq * d)
        for causal in (False, True):
            for backward in (False, True):
                work = flops * (3 if backward else 1)  # backward: about twice the forward
                # the hand-written causal cumsum holds T x d x d: skipped above 2 GiB
                cumsum_bytes = batch * 8 * seq * d * d * 4 if causal else 0
                runnable = {
                    name: function for name, (function, _) in methods.items()
                    if name == "kernelnotes" or (
                        seconds_per_flop.get((name, causal, backward), 0) * work < slow_s
                        and not (name == "einsum" and cumsum_bytes > 2**31))}
                times = {name: [] for name in runnable}
                order = list(runnable)
                for repeat in range(repeats):  # interleaved: every method once per repeat,
                    for name in order[repeat % len(order):] + order[:repeat % len(order)]:
                        function = runnable[name]  # starting with a different one each time
                        if repeat and (len(times[name]) < repeat
                                       or _timed_enough(times[name], budget_s)):
                            continue  # not applicable, or timed long enough
                        elapsed = _measure(function, q, k, v, causal, backward)
                        if elapsed is not None:
                            times[name].append(elapsed)
                best = {name: min(t) for name, t in times.items() if t}
                for name, seconds in best.items():
                    seconds_per_flop[name, causal, backward] = seconds / work
                peak = max(peak, mm_gflops(1))
                fastest_peer = min((t for n, t in best.items() if n != "kernelnotes"),
                                   default=float("nan"))
                for name, seconds in best.items():
                    rows.append({
                        "method": name, "threads": threads, "batch": batch, "heads": 8,
                        "seq": seq, "dim": d, "causal": causal,
                        "pass": "fwd+bwd" if backward else "fwd",
                        "ms": round(seconds * 1e3, 2), "repeats": len(times[name]),
                        "GFLOP/s": round(work / seconds / 1e9, 2),
                        "vs fastest peer": round(fastest_peer / best["kernelnotes"], 2)
                        if name == "kernelnotes" else "",
                    })
                print(f"{threads} thr B={batch} T={seq} d={d} causal={causal} bwd={backward}: "
                      + ", ".join(f"{n} {t * 1e3:.1f} ms" for n, t in best.items()), flush=True)
    return _with_shares(rows, peak), peak, []


#: repeats a method gets at each size before --budget may stop it (a shared machine stalls
#: single calls; the best of three filters most stalls out)
MIN_REPEATS = 3


def _timed_enough(times: list[float], budget_s: float) -> bool:
    """Whether a method has run ``budget_s`` seconds in at least :data:`MIN_REPEATS` calls,
    or three times the budget in fewer."""
    total = sum(times)
    return (total > budget_s and len(times) >= MIN_REPEATS) or total > 3 * budget_s


def _with_shares(rows: list[dict], peak: float) -> list[dict]:
    for row in rows:
        row["% of mm"] = round(100 * row["GFLOP/s"] / peak, 1)
    return rows


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


def allocator() -> str:
    """How glibc's malloc was set for this run (its environment variables)."""
    settings = {name: value for name, value in os.environ.items() if name.startswith("MALLOC_")}
    if not settings:
        return ("glibc's default malloc (freed blocks of a few MiB and more go back to the "
                "system, so each call pays the page faults of touching fresh memory)")
    return ("glibc's malloc with " + ", ".join(f"{n}={v}" for n, v in sorted(settings.items()))
            + " (freed memory is kept and reused: no call pays page faults on fresh memory)")


def write(rows, peaks: dict, versions, stem: str, note: str, seconds: float,
          slow_s: float, repeats: int, budget_s: float) -> None:
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / stem
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    columns = list(rows[0])
    lines = [
        "# Linear attention on CPU against its peers",
        "",
        f"- Date (UTC): {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M}, "
        f"the whole run {seconds / 60:.1f} min",
        f"- CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores; "
        f"torch threads: {', '.join(map(str, peaks))}",
        f"- Versions: python {platform.python_version()}, "
        + ", ".join(f"{n} {v}" for n, v in versions.items()),
        "- torch.mm (1024 x 1024, float32) measured in this run: "
        + ", ".join(f"{p:.1f} GFLOP/s on {t} thread{'s' * (t > 1)}" for t, p in peaks.items()),
        "- Memory: " + allocator(),
        "- Caveat: the machine was shared with other jobs while this ran; times are the best of "
        f"up to {repeats} interleaved repeats (a method stops once it has run {budget_s:g} s in "
        f"at least {MIN_REPEATS} calls, or {3 * budget_s:g} s in fewer), and the ratios (same "
        f"moment, same load) are more reliable than the absolute times. A peer expected to "
        f"take more than {slow_s:g} s per call (its rate at a smaller size of the same kind) "
        "is not run." + (f" {note}" if note else ""),
        "- `vs fastest peer`: the fastest peer's time over kernelnotes' (above 1: kernelnotes "
        "is faster). `% of mm`: the algorithm's minimum FLOPs per second against torch.mm "
        "on the same number of threads.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.md and .csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="two sizes, 3 repeats (a smoke test), written to cpu_linear_quick")
    parser.add_argument("--threads", type=int, nargs="+", default=[1],
                        help="torch thread counts, one run of every size each (default 1)")
    parser.add_argument("--seqs", type=int, nargs="+", help="only these sequence lengths")
    parser.add_argument("--repeats", type=int, default=10, help="most repeats per method")
    parser.add_argument("--budget", type=float, default=3.0,
                        help="seconds of timing per method and size after which it stops")
    parser.add_argument("--slow", type=float, default=SLOW_S,
                        help="seconds per call above which a peer is not run (default 10)")
    parser.add_argument("--note", default="", help="a sentence added to the caveats")
    parser.add_argument("--stop-after", type=float,
                        help="seconds after which no new size is started (the rest is listed)")
    parser.add_argument("--stem", default="cpu_linear",
                        help="name of the result files in benchmarks/results (default cpu_linear)")
    args = parser.parse_args()
    sizes = [size for size in SIZES if args.seqs is None or size[1] in args.seqs]
    repeats = args.repeats
    if args.quick:
        sizes, repeats = [(1, 1024, 64), (1, 4096, 64)], 3
    methods = {"kernelnotes": (lambda q, k, v, c: linear_attention(q, k, v, causal=c),
                               kernelnotes.__version__), **peers()}
    start = time.perf_counter()
    deadline = start + (args.stop_after if args.stop_after is not None else float("inf"))
    rows, peaks, notes = [], {}, [args.note] if args.note else []
    for threads in args.threads:
        thread_rows, peaks[threads], left_out = run(threads, sizes, repeats, args.budget,
                                                    args.slow, methods, deadline)
        rows += thread_rows
        if left_out:
            notes.append(f"The run was stopped after {args.stop_after:g} s: on {threads} "
                         f"thread(s), sizes (batch, seq, dim) {left_out} were not measured.")
        if rows:  # after each thread count, so that a stopped run keeps what it measured
            write(rows, peaks, {name: ver for name, (_, ver) in methods.items()},
                  "cpu_linear_quick" if args.quick else args.stem, " ".join(notes),
                  time.perf_counter() - start, args.slow, repeats, args.budget)

if __name__ == "__main__":
    main()
