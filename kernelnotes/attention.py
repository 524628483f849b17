"""Softmax attention, and the same computation read as Nadaraya-Watson regression.

Shapes follow :func:`torch.nn.functional.scaled_dot_product_attention`: ``q`` is
``(..., L, E)``, ``k`` is ``(..., S, E)``, ``v`` is ``(..., S, Ev)``, usually with
``... = (batch, heads)``. ``scale`` defaults to ``1 / sqrt(E)``. With ``causal=True`` query
``i`` sees keys ``0..i`` (the top-left aligned mask SDPA uses).
"""

from __future__ import annotations

import math

import torch

from ._validation import (
    as_tensor,
    broadcast_batch,
    check_min_dims,
    check_positive,
    check_same_dtype,
    check_same_last_dim,
)
from .kernels import exp_dot
from .smoothing import nadaraya_watson

__all__ = ["attention_as_nadaraya_watson", "causal_mask", "softmax_attention"]


def _qkv(q, k, v):
    q = as_tensor(q, "q")
    k = as_tensor(k, "k", like=q)
    v = as_tensor(v, "v", like=q)
    for t, name, layout in ((q, "q", "(..., L, E)"), (k, "k", "(..., S, E)"),
                            (v, "v", "(..., S, Ev)")):
        check_min_dims(t, name, 2, layout)
    check_same_last_dim(q, k, ("q", "k"))
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same sequence length, got "
                         f"{k.shape[-2]} and {v.shape[-2]}")
    check_same_dtype((q, "q"), (k, "k"), (v, "v"))
    broadcast_batch({"q": q.shape, "k": k.shape, "v": v.shape}, trailing=2)
    return q, k, v


def _scale(scale, dim: int) -> float:
    return 1 / math.sqrt(dim) if scale is None else check_positive(scale, "scale")


def causal_mask(query_len: int, key_len: int, device=None) -> torch.Tensor:
    """Boolean ``(L, S)`` mask, True where query ``i`` may see key ``j`` (``j <= i``)."""
    return torch.ones(query_len, key_len, dtype=torch.bool, device=device).tril()


def softmax_attention(q, k, v, causal: bool = False, scale=None):
    """Scaled dot-product attention written out: ``softmax(q k^T * scale) v``.

    Returns ``(output, weights)`` with output ``(..., L, Ev)`` and weights ``(..., L, S)``.
    """
    q, k, v = _qkv(q, k, v)
    scores = (q @ k.mT) * _scale(scale, q.shape[-1])
    if causal:
        scores = scores.masked_fill(~causal_mask(q.shape[-2], k.shape[-2], q.device),
                                    float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def attention_as_nadaraya_watson(q, k, v, causal: bool = False, scale=None):
    """Attention computed as Nadaraya-Watson regression with the ``exp_dot`` kernel.

    The queries are the test points, the keys the training inputs, the values the
    targets, and the kernel ``exp(q . k / t)`` with temperature ``t = 1 / scale``.
    Returns ``(output, weights)`` exactly like :func:`softmax_attention`.
    """
    q, k, v = _qkv(q, k, v)
    temperature = 1 / _scale(scale, q.shape[-1])
    mask = causal_mask(q.shape[-2], k.shape[-2], q.device) if causal else None
    return nadaraya_watson(q, k, v, exp_dot, mask=mask, temperature=temperature)
