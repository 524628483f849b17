"""The two reference algorithms of linear attention, on features already computed.

Every algorithm of this subpackage has one signature::

    algorithm(fq, fk, v, causal, eps, state) -> (out, S, z)

with features ``fq (..., L, m)`` and ``fk (..., S, m)``, values ``v (..., S, dv)`` in the
compute dtype, sharing their leading dims; ``state`` is None or the carried ``(S0, z0)``,
``(..., m, dv)`` and ``(..., m)``; ``(S, z)`` is the state after the keys,
``S = S0 + sum_j phi(k_j) v_j^T`` and ``z = z0 + sum_j phi(k_j)``.
"""

from __future__ import annotations

import torch

__all__ = ["quadratic", "read_out", "recurrent"]


def quadratic(fq, fk, v, causal: bool, eps, state):
    """The explicit ``(phi(Q) phi(K)^T) V`` with its row sums, masked when causal."""
    weights = fq @ fk.mT
    if causal:
        weights = weights.tril()
    num = weights @ v
    den = weights.sum(-1, keepdim=True)
    S, z = fk.mT @ v, fk.sum(-2)
    if state is not None:
        S0, z0 = state
        num = num + fq @ S0
        den = den + fq @ z0[..., None]
        S, z = S + S0, z + z0
    return num / (den + eps), S, z


def read_out(fq_t, S, z, eps) -> torch.Tensor:
    """``phi(q_t) S / (phi(q_t) . z + eps)`` for one position ``fq_t (..., m)``."""
    num = (fq_t[..., None, :] @ S).squeeze(-2)
    return num / ((fq_t * z).sum(-1, keepdim=True) + eps)


def recurrent(fq, fk, v, causal: bool, eps, state):
    """A loop over time carrying ``S_t`` and ``z_t``: the RNN reading."""
    if state is None:
        S = fk.new_zeros(*fk.shape[:-2], fk.shape[-1], v.shape[-1])
        z = fk.new_zeros(*fk.shape[:-2], fk.shape[-1])
    else:
        S, z = state
    outputs = []
    for t in range(fk.shape[-2]):
        S = S + fk[..., t, :, None] * v[..., t, None, :]
        z = z + fk[..., t, :]
        if causal:
            outputs.append(read_out(fq[..., t, :], S, z, eps))
    if not causal:  # every query reads the final state
        outputs = [read_out(fq[..., t, :], S, z, eps) for t in range(fq.shape[-2])]
    return torch.stack(outputs, dim=-2), S, z
