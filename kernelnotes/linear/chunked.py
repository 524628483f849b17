"""The reassociated torch algorithm: ``phi(Q) (phi(K)^T V)``, causal by chunks.

Same signature as the references (:mod:`kernelnotes.linear.reference`).
"""

from __future__ import annotations

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
    # one reciprocal per row and a product in place: a broadcast division into a fresh
    # tensor is several times slower
    return (fq @ S).mul_((fq @ z[..., None]).add_(eps).reciprocal_()), S, z


def _chunked_causal(fq, fk, v, eps, state):
    """Causal linear attention by chunks, every chunk at once.

    Inside a chunk: the masked quadratic form. Across chunks: each chunk's summed state
    ``phi(K_c)^T V_c``, summed over the earlier chunks (plus the carried state) and read out
    by the chunk's queries. With chunk length ``c >= min(m, dv)`` the stacked states hold
    ``(seq / c) m dv <= seq max(m, dv)`` numbers and the intra-chunk scores ``seq c``:
    memory linear in the sequence, never a ``seq x m x dv`` tensor.
    """
    seq = fq.shape[-2]
    chunk = min(seq, max(CHUNK, min(fq.shape[-1], v.shape[-1])))
    chunks = -(-seq // chunk)
    pad = chunks * chunk - seq

    def split(x):  # (..., seq, d) -> (..., chunks, chunk, d), zero rows as padding
        return (F.pad(x, (0, 0, 0, pad)) if pad else x).unflatten(-2, (chunks, chunk))

    fq, fk, v = split(fq), split(fk), split(v)
    scores = (fq @ fk.mT).tril_()  # (..., chunks, chunk, chunk); bmm keeps no output
    chunk_S = fk.mT @ v  # (..., chunks, m, dv)
    chunk_z = fk.sum(-2)  # (..., chunks, m)
    # the earlier chunks: inclusive prefix sums less the chunk's own (no shifted copy;
    # in place where autograd keeps no copy of the operand)
    S = chunk_S.cumsum(-3)
    z = chunk_z.cumsum(-2)
    final_S, final_z = S[..., -1, :, :].clone(), z[..., -1, :].clone()
    S, z = S.sub_(chunk_S), z.sub_(chunk_z)
    if state is not None:
        S, z = S.add_(state[0][..., None, :, :]), z.add_(state[1][..., None, :])
        final_S, final_z = final_S + state[0], final_z + state[1]
    num = (scores @ v).add_(fq @ S)
    den = scores.sum(-1, keepdim=True).add_(fq @ z[..., None]).add_(eps)
    out = num.mul_(den.reciprocal_()).flatten(-3, -2)
    return (out[..., :seq, :] if pad else out), final_S, final_z
