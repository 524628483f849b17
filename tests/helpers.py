"""Helpers shared by the test files: random attention inputs, a relative error, float64."""

import torch

F64 = torch.float64


def random_qkv(seed, lq, d, dv, *, lead=(2, 3), lk=None, dtype=F64, device=None):
    """Standard normal ``q (*lead, lq, d)``, ``k (*lead, lk, d)``, ``v (*lead, lk, dv)``.

    Drawn in this order from one generator seeded with ``seed``; ``lk`` defaults to ``lq``.
    """
    g = torch.Generator().manual_seed(seed)
    lk = lq if lk is None else lk
    q = torch.randn(*lead, lq, d, generator=g, dtype=dtype)
    k = torch.randn(*lead, lk, d, generator=g, dtype=dtype)
    v = torch.randn(*lead, lk, dv, generator=g, dtype=dtype)
    return tuple(t.to(device) for t in (q, k, v))


def rel_err(out, ref) -> float:
    """``|out - ref| / |ref|`` in Frobenius norms, computed in float64."""
    out, ref = out.double(), ref.double()
    return ((out - ref).norm() / ref.norm()).item()
