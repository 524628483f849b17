"""The reassociated torch algorithm: ``phi(Q) (phi(K)^T V)``, causal by chunks.

:func:`chunked` has the signature of the references (:mod:`kernelnotes.linear.reference`)
and records the graph for autograd. :func:`streamed` computes the same without autograd
(inference): it applies the feature map block by block, so no full-size feature tensor is
ever made, and writes each block's rows straight into an output allocated once.

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

__all__ = ["BLOCK_BYTES", "CAUSAL_ROWS", "CHUNK", "STREAM_BYTES", "chunked", "streamed"]

#: Smallest chunk of the causal algorithm (the chunk grows with the head dims so that the
#: per-chunk states never hold more than ``seq * max(m, dv)`` numbers).
CHUNK = 64

#: Target size of one block's largest intermediate (a block holds at least 4 chunks).
BLOCK_BYTES = 4 * 2**20

#: Target size of one block's features in :func:`streamed`, per thread: small enough that a
#: block's features, values and products stay in this CPU's caches between the passes over
#: them.
STREAM_BYTES = 2**20

#: Rows of one causal block in :func:`streamed` (whole chunks; heads are grouped to fill
#: :data:`STREAM_BYTES`).
CAUSAL_ROWS = 1024


def _chunk(m: int, dv: int) -> int:
    """The causal chunk for ``m`` features and ``dv`` value dims: at least :data:`CHUNK`."""
    return max(CHUNK, min(m, dv))


def chunked(fq, fk, v, causal: bool, eps, state):
    """Linear attention by reassociation; causal attention by chunks."""
    if not causal:
        # the state in one product: its output is m x dv, so blocks would save no memory,
        # and the backward of a split of fk would concatenate the blocks' gradients
        S, z = fk.mT @ v, fk.sum(-2)
        if state is not None:
            S, z = S + state[0], z + state[1]
        # the read-out in one product (its output is the result, no blocks to concatenate),
        # normalised by one reciprocal per row and a product in place: a broadcast division
        # into a fresh tensor is several times slower
        return (fq @ S).mul_(_dot(fq, z).add_(eps).reciprocal_()), S, z
    chunk = _chunk(fq.shape[-1], v.shape[-1])
    per_position = fq[..., 0, 0].numel() * max(fq.shape[-1], v.shape[-1], chunk)
    block = chunk * max(4, BLOCK_BYTES // (per_position * fq.element_size() * chunk))
    if block >= fq.shape[-2]:
        return _causal_block(fq, fk, v, eps, state, chunk)
    # torch.split, not indexing: its backward writes each block's gradient once, where the
    # backward of an index would allocate a zero gradient of the full size per block
    outs = []
    for fq_b, fk_b, v_b in zip(*(x.split(block, dim=-2) for x in (fq, fk, v)), strict=True):
        out, *state = _causal_block(fq_b, fk_b, v_b, eps, state, chunk)
        outs.append(out)
    return torch.cat(outs, -2), *state


def _dot(fq, z) -> torch.Tensor:
    """``phi(q_i) . z`` for every row, ``(..., rows, 1)``, with ``fq (..., rows, m)`` and
    ``z (..., m)``: by ``vecdot``, as ``fq @ z[..., None]`` (a batched product with one
    column) is several times slower on CPU."""
    return torch.linalg.vecdot(fq, z[..., None, :])[..., None]


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
    # the state before each chunk, the sum of the earlier chunks' states, as one product
    # with a strictly lower triangle of ones: a Python loop over the chunks costs a few
    # small operations per chunk, and torch's cumsum over a non-last axis is slow on CPU
    earlier = torch.ones(chunks, chunks, dtype=fq.dtype, device=fq.device).tril_(-1)
    before_S = (earlier @ chunk_S.flatten(-2)).unflatten(-1, chunk_S.shape[-2:])
    before_z = earlier @ chunk_z
    S, z = chunk_S.sum(-3), chunk_z.sum(-2)
    if state is not None:
        before_S = before_S + state[0][..., None, :, :]
        before_z = before_z + state[1][..., None, :]
        S, z = S + state[0], z + state[1]
    num = (scores @ v).add_(fq @ before_S)
    den = scores.sum(-1, keepdim=True).add_(_dot(fq, before_z))
    out = num.mul_(den.add_(eps).reciprocal_()).flatten(-3, -2)
    return (out[..., :seq, :] if pad else out), S, z


def streamed(features, q, k, v, causal: bool, eps, state, out: torch.Tensor) -> None:
    """Linear attention without autograd, into ``out``; ``state`` updated in place.

    ``features(x, is_query)`` gives ``phi`` of a block of ``q`` or ``k`` in the compute
    dtype, that of ``state = (S, z)``: contiguous tensors ``(..., m, dv)`` and ``(..., m)``
    holding the initial state, which become the final one. ``v`` is converted block by
    block; ``out (..., L, dv)`` receives the normalised rows in its own dtype. The batch
    dims are flattened into heads, and a block is a group of heads by a range of rows,
    sized so that its features, values and products stay in cache. Non-causal: per group
    of heads the keys' blocks are summed into ``S`` and ``z``, then each block of queries
    reads them out. Causal: :func:`_causal_block` on each block, carrying the state.
    """
    m, dv = state[0].shape[-2:]
    if q.shape[-2] == k.shape[-2] == 1:
        # one position, as in decoding token by token: its one key is not after its query,
        # so causal is non-causal, a few operations where the chunked form is a few dozen
        causal = False
    q, k, v = (x.reshape(-1, *x.shape[-2:]) for x in (q, k, v))
    # views: the rows and the state land in the caller's tensors
    out, S, z = out.view(-1, *out.shape[-2:]), state[0].view(-1, m, dv), state[1].view(-1, m)
    chunk = _chunk(m, dv)
    row_bytes = max(m, dv, q.shape[-1]) * S.element_size()
    # a cache-sized share per thread: every operation on a block is one parallel region,
    # whose synchronisation costs more the more regions there are
    budget = STREAM_BYTES * torch.get_num_threads()
    # rows for one thread's share, and the threads' shares side by side as heads: a batched
    # product splits its heads between the threads, where one head's m x dv sum over a
    # long block of rows barely gains from a second thread. Causal blocks are a few chunks:
    # the prefix over a block's chunks costs chunks^2 per head
    rows = CAUSAL_ROWS if causal else STREAM_BYTES // row_bytes
    longest = chunk * -(-max(q.shape[-2], k.shape[-2]) // chunk)
    rows = min(chunk * max(1, rows // chunk), longest)
    group = max(1, budget // (rows * row_bytes))
    for h in range(0, q.shape[0], group):
        g = slice(h, h + group)
        if causal:
            state_g = S[g], z[g]
            for r in _blocks(q.shape[-2], rows, chunk):
                block_out, *state_g = _causal_block(
                    features(q[g, r], True), features(k[g, r], False),
                    # the values contiguous once: matmul would copy the slice per product
                    v[g, r].to(S.dtype).contiguous(), eps, state_g, chunk)
                out[g, r].copy_(block_out)
            S[g], z[g] = state_g
            continue
        S_g, z_g = S[g], z[g]
        for r in _blocks(k.shape[-2], rows, chunk):
            fk = features(k[g, r], False)
            S_g.baddbmm_(fk.mT, v[g, r].to(S.dtype))
            z_g.add_(fk.sum(-2))
        for r in _blocks(q.shape[-2], rows, chunk):
            fq = features(q[g, r], True)
            # one reciprocal per row and a product into the output: a broadcast division
            # into a fresh tensor is several times slower
            torch.mul(fq @ S_g, _dot(fq, z_g).add_(eps).reciprocal_(), out=out[g, r])


def _blocks(seq: int, rows: int, chunk: int):
    """Slices of ``rows`` (a multiple of ``chunk``) covering ``0..seq``; a last partial
    chunk is a slice of its own, so every block is whole chunks or a single chunk."""
    whole = seq - seq % chunk
    for start in range(0, whole, rows):
        yield slice(start, min(start + rows, whole))
    if whole < seq:
        yield slice(whole, seq)
