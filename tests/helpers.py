"""Helpers shared by the test files: random attention inputs, a relative error, float64, and
for the linear-attention tests the backends and an independent reference."""

import torch

from kernelnotes.linear import elu_plus_one
from kernelnotes.linear import triton as lt

F64 = torch.float64
TORCH_BACKENDS = ("quadratic", "recurrent", "torch")
#: The Triton backend runs here on CUDA, or on CPU under the interpreter (tests/conftest.py).
TRITON_RUNS = lt.HAS_TRITON and (lt.INTERPRET or torch.cuda.is_available())
DEVICE = "cuda" if torch.cuda.is_available() and not lt.INTERPRET else "cpu"


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


def explicit(q, k, v, phi=elu_plus_one, causal=False, eps=1e-6):
    """Linear attention by its definition, sum by sum, in float64: independent of every backend."""
    fq, fk, v = phi(q.double()), phi(k.double()), v.double()
    weights = torch.einsum("...id,...jd->...ij", fq, fk)
    if causal:
        weights = weights * torch.ones(weights.shape[-2:], dtype=F64).tril()
    return torch.einsum("...ij,...jv->...iv", weights, v) / (weights.sum(-1)[..., None] + eps)
