"""The reassociated torch algorithm: ``phi(Q) (phi(K)^T V)``, causal by chunks.

Same signature as the references (:mod:`kernelnotes.linear.reference`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["CHUNK", "chunked"]

#: Smallest chunk of the causal algorithm (the chunk grows with the head dims so that the
#: per-chunk states never hold more than ``seq * max(m, dv)`` numbers).
CHUNK = 64


def chunked(fq, fk, v, causal: bool, eps, state):
    """Linear attention by reassociation; causal attention by chunks."""
    if causal:
        return _chunked_causal(fq, fk, v, eps, state)
    S, z = fk.mT @ v, fk.sum(-2)
    if state is not None:
        S, z = S + state[0], z + state[1]
    return (fq @ S) / (fq @ z[..., None] + eps), S, z


def _exclusive_cumsum(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Cumulative sum over ``dim`` shifted by one: entry n holds the sum of entries < n."""
    total = x.cumsum(dim)
    return torch.cat([torch.zeros_like(total.narrow(dim, 0, 1)),
                      total.narrow(dim, 0, x.shape[dim] - 1)], dim=dim)


def _chunked_causal(fq, fk, v, eps, state):
    """Causal linear attention by chunks, every chunk at once.

    Inside a chunk: the masked quadratic form. Across chunks: each chunk's summed state
    ``phi(K_c)^T V_c``, an exclusive prefix sum over chunks (plus the carried state), read
    out by the chunk's queries. With chunk length ``c >= min(m, dv)`` the stacked states
    hold ``(seq / c) m dv <= seq max(m, dv)`` numbers and the intra-chunk scores
    ``seq c``: memory linear in the sequence, never a ``seq x m x dv`` tensor.
    """
    seq = fq.shape[-2]
    chunk = min(seq, max(CHUNK, min(fq.shape[-1], v.shape[-1])))
    chunks = -(-seq // chunk)
    pad = chunks * chunk - seq

    def split(x):  # (..., seq, d) -> (..., chunks, chunk, d), zero rows as padding
        return F.pad(x, (0, 0, 0, pad)).unflatten(-2, (chunks, chunk))

    fq, fk, v = split(fq), split(fk), split(v)
    scores = (fq @ fk.mT).tril()  # (..., chunks, chunk, chunk)
    chunk_S = fk.mT @ v  # (..., chunks, m, dv)
    chunk_z = fk.sum(-2)  # (..., chunks, m)
    S = _exclusive_cumsum(chunk_S, dim=-3)  # the earlier chunks
    z = _exclusive_cumsum(chunk_z, dim=-2)
    if state is not None:
        S, z = S + state[0][..., None, :, :], z + state[1][..., None, :]
    num = scores @ v + fq @ S
    den = scores.sum(-1, keepdim=True) + fq @ z[..., None] + eps
    out = (num / den).flatten(-3, -2)[..., :seq, :]
    return out, S[..., -1, :, :] + chunk_S[..., -1, :, :], z[..., -1, :] + chunk_z[..., -1, :]
