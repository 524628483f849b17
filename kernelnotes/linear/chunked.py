"""The reassociated torch algorithm: ``phi(Q) (phi(K)^T V)``, causal by chunks.

Same signature as the references (:mod:`kernelnotes.linear.reference`).

Long sequences are processed in blocks of positions that carry the state from one to the
next (the state API of :func:`~kernelnotes.linear_attention`, used inside): every
intermediate is then a few MiB, which the allocator reuses from block to block, where
whole-sequence intermediates are fresh memory the system must map and zero on every call
(measured on a 2-core virtual machine: a fresh 32 MiB ``x + 1`` took 146 ms, the same
addition in place 2 ms). Only the output is allocated at full size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["BLOCK_BYTES", "CHUNK", "chunked"]

#: Smallest chunk of the causal algorithm (the chunk grows with the head dims so that the
#: per-chunk states never hold more than ``seq * max(m, dv)`` numbers).
CHUNK = 64

#: Target size of one block's largest intermediate (a block holds at least 4 chunks).
BLOCK_BYTES = 4 * 2**20


def chunked(fq, fk, v, causal: bool, eps, state):
    """Linear attention by reassociation; causal attention by chunks."""
    chunk = max(CHUNK, min(fq.shape[-1], v.shape[-1]))
    per_position = fq[..., 0, 0].numel() * max(fq.shape[-1], v.shape[-1], chunk)
    block = chunk * max(4, BLOCK_BYTES // (per_position * fq.element_size() * chunk))
    # torch.split, not indexing: its backward writes each block's gradient once, where the
    # backward of an index would allocate a zero gradient of the full size per block
    fk_blocks, v_blocks = fk.split(block, dim=-2), v.split(block, dim=-2)
    if causal:
        fq_blocks = fq.split(block, dim=-2)
        outs = []
        for fq_b, fk_b, v_b in zip(fq_blocks, fk_blocks, v_blocks, strict=True):
            out, *state = _causal_block(fq_b, fk_b, v_b, eps, state or None, chunk)
            outs.append(out)
        return (outs[0] if len(outs) == 1 else torch.cat(outs, -2)), *state
    S, z = (0, 0) if state is None else state
    for fk_b, v_b in zip(fk_blocks, v_blocks, strict=True):
        S = S + fk_b.mT @ v_b
        z = z + fk_b.sum(-2)
    # the read-out in one product (its output is the result, no blocks to concatenate),
    # normalised by one reciprocal per row and a product in place: a broadcast division
    # into a fresh tensor is several times slower
    return (fq @ S).mul_((fq @ z[..., None]).add_(eps).reciprocal_()), S, z


def _causal_block(fq, fk, v, eps, state, chunk: int):
    """Causal linear attention over one block, its chunks at once.

    Inside a chunk: the masked quadratic form. Across chunks: each chunk's summed state
    ``phi(K_c)^T V_c``, summed over the earlier chunks (plus the carried state) and read out
    by the chunk's queries. The stacked states hold ``(block / c) m dv`` numbers, the
    intra-chunk scores ``block c``: memory linear in the sequence.
    """
    seq = fq.shape[-2]
    chunk = min(seq, chunk)
    chunks = -(-seq // chunk)
    pad = chunks * chunk - seq

    def split(x):  # (..., seq, d) -> (..., chunks, chunk, d), zero rows as padding
        return (F.pad(x, (0, 0, 0, pad)) if pad else x).unflatten(-2, (chunks, chunk))

    fq, fk, v = split(fq), split(fk), split(v)
    scores = (fq @ fk.mT).tril_()  # (..., chunks, chunk, chunk); bmm keeps no output
    chunk_S = fk.mT @ v  # (..., chunks, m, dv)
    chunk_z = fk.sum(-2)  # (..., chunks, m)
    if state is None:
        S = chunk_S.new_zeros(chunk_S[..., 0, :, :].shape)
        z = chunk_z.new_zeros(chunk_z[..., 0, :].shape)
    else:
        S, z = state
    # the state before each chunk, by a loop over the chunks: torch's cumsum over a
    # non-last axis is slow on CPU (590 ms for 8.4 M numbers, against 30 ms for this loop)
    before_S, before_z = [], []
    for c in range(chunks):
        before_S.append(S)
        before_z.append(z)
        S = S + chunk_S[..., c, :, :]
        z = z + chunk_z[..., c, :]
    num = (scores @ v).add_(fq @ torch.stack(before_S, -3))
    den = scores.sum(-1, keepdim=True).add_(fq @ torch.stack(before_z, -2)[..., None])
    out = num.mul_(den.add_(eps).reciprocal_()).flatten(-3, -2)
    return (out[..., :seq, :] if pad else out), S, z
