"""Softmax attention, and the same computation read as Nadaraya-Watson regression.

Shapes follow :func:`torch.nn.functional.scaled_dot_product_attention`: ``q`` is
``(..., L, E)``, ``k`` is ``(..., S, E)``, ``v`` is ``(..., S, Ev)``, usually with
``... = (batch, heads)``. ``scale`` defaults to ``1 / sqrt(E)``. With ``causal=True`` query
``i`` sees keys ``0..i`` (the top-left aligned mask SDPA uses).

:func:`gaussian_attention` is the Gaussian-kernel smoother that softmax attention becomes
once queries and keys have unit length (:func:`qk_normalize`).
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
from .kernels import exp_dot, gaussian
from .smoothing import nadaraya_watson

__all__ = [
    "attention_as_nadaraya_watson",
    "attention_contributions",
    "causal_mask",
    "gaussian_attention",
    "l2_normalize",
    "qk_normalize",
    "softmax_attention",
]


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


def l2_normalize(x, dim: int = -1, eps: float = 1e-12) -> torch.Tensor:
    """Scale ``x`` to unit Euclidean length along ``dim``: ``x / max(|x|, eps)``.

    The same rule as :func:`torch.nn.functional.normalize`; a vector shorter than ``eps``
    (the zero vector, say) is divided by ``eps`` rather than by its own norm, so it stays
    near zero instead of turning into NaN.
    """
    x = as_tensor(x, "x")
    eps = check_positive(eps, "eps")
    if isinstance(dim, bool) or not isinstance(dim, int) or not -x.dim() <= dim < x.dim():
        raise ValueError(f"dim must be an integer axis of x (which has {x.dim()} axes), "
                         f"got {dim!r}")
    return x / torch.linalg.vector_norm(x, dim=dim, keepdim=True).clamp_min(eps)


def qk_normalize(q, k, eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
    """QK-normalization: every query and key scaled to unit length along the feature axis.

    After it, ``q . k`` is the cosine of the angle between them and the attention kernel
    ``exp(q . k / t)`` is a Gaussian on the unit sphere with bandwidth ``sqrt(t)``.
    """
    q = as_tensor(q, "q")
    k = as_tensor(k, "k", like=q)
    return l2_normalize(q, eps=eps), l2_normalize(k, eps=eps)


def _log_gaussian_key_weighted(x, y, bandwidth) -> torch.Tensor:
    # log[exp(-|x - y|^2 / (2 h^2)) * exp(|y|^2 / (2 h^2))]: the per-key factor is added to
    # the log-Gram, so large key norms never overflow before the softmax normalises them.
    h = check_positive(bandwidth, "bandwidth")
    return gaussian.log_gram(x, y, h) + (y * y).sum(-1)[..., None, :] / (2 * h * h)


def _gaussian_key_weighted(x, y, bandwidth) -> torch.Tensor:
    return torch.exp(_log_gaussian_key_weighted(x, y, bandwidth))


_gaussian_key_weighted.log_gram = _log_gaussian_key_weighted


def gaussian_attention(q, k, v, causal: bool = False, scale=None,
                       key_norm_correction: bool = False):
    """Nadaraya-Watson regression of the values with a Gaussian kernel on queries and keys.

    With temperature ``t = 1 / scale`` the weights are
    ``alpha_ij ∝ exp(-|q_i - k_j|^2 / (2 t))``: a Gaussian kernel of bandwidth ``sqrt(t)``.
    Since ``exp(q . k / t) = exp(-|q - k|^2 / (2t)) exp(|q|^2 / (2t)) exp(|k|^2 / (2t))``,
    this equals :func:`softmax_attention` exactly when every key has the same length
    (unit-length queries and keys, for instance); the query factor always cancels.

    Parameters
    ----------
    q, k, v : ``(..., L, E)``, ``(..., S, E)``, ``(..., S, Ev)``, as in
        :func:`softmax_attention`.
    causal : if True, query ``i`` sees keys ``0..i`` only.
    scale : ``1 / t``; defaults to ``1 / sqrt(E)`` like softmax attention.
    key_norm_correction : if True, weight key ``j`` by the extra factor ``exp(|k_j|^2 / (2t))``
        (added in log space). The result is then softmax attention for any ``q`` and ``k``.

    Returns
    -------
    output : ``(..., L, Ev)``
    weights : ``(..., L, S)``, non-negative, each row summing to 1.
    """
    q, k, v = _qkv(q, k, v)
    bandwidth = math.sqrt(1 / _scale(scale, q.shape[-1]))
    kernel = _gaussian_key_weighted if key_norm_correction else gaussian
    mask = causal_mask(q.shape[-2], k.shape[-2], q.device) if causal else None
    return nadaraya_watson(q, k, v, kernel, mask=mask, bandwidth=bandwidth)


def attention_contributions(weights, v) -> torch.Tensor:
    """Per-token contributions ``alpha_ij v_j`` to each attention output.

    ``weights`` is ``(..., L, S)`` (rows of an attention matrix) and ``v`` is
    ``(..., S, Ev)``. Returns ``(..., L, S, Ev)``; summing over the ``S`` axis gives the
    attention output ``weights @ v``.
    """
    weights = as_tensor(weights, "weights")
    v = as_tensor(v, "v", like=weights)
    check_min_dims(weights, "weights", 2, "(..., L, S)")
    check_min_dims(v, "v", 2, "(..., S, Ev)")
    if weights.shape[-1] != v.shape[-2]:
        raise ValueError(f"weights and v must agree on the number of keys: weights has "
                         f"{weights.shape[-1]} columns, v has {v.shape[-2]} rows")
    check_same_dtype((weights, "weights"), (v, "v"))
    broadcast_batch({"weights": weights.shape, "v": v.shape}, trailing=2)
    return weights[..., :, :, None] * v[..., None, :, :]
