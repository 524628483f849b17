"""Softmax attention, and the same computation read as Nadaraya-Watson regression.

Shapes follow :func:`torch.nn.functional.scaled_dot_product_attention`: ``q`` is
``(..., L, E)``, ``k`` is ``(..., S, E)``, ``v`` is ``(..., S, Ev)``, usually with
``... = (batch, heads)``. ``scale`` defaults to ``1 / sqrt(E)``. With ``causal=True`` query
``i`` sees keys ``0..i`` (the top-left aligned mask SDPA uses). float16 and bfloat16 inputs
are computed in float32 (scores, softmax and the weighted sum) and the results rounded back
to the input dtype, so scores past float16's 65504 stay finite.

:func:`gaussian_attention` is the Gaussian-kernel smoother that softmax attention becomes
once queries and keys have unit length (:func:`qk_normalize`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from . import _cores
from ._validation import (
    as_qkv,
    as_tensor,
    broadcast_batch,
    check_bool,
    check_min_dims,
    check_positive,
    check_positive_int,
    check_same_dtype,
)

__all__ = [
    "attention_as_nadaraya_watson",
    "attention_contributions",
    "causal_mask",
    "gaussian_attention",
    "l2_normalize",
    "qk_normalize",
    "softmax_attention",
]


# kernelnotes.linear imports this name; remove it once that module uses as_qkv instead.
_qkv = as_qkv


def _scale(scale, dim: int) -> float:
    return 1 / math.sqrt(dim) if scale is None else check_positive(scale, "scale")


def causal_mask(query_len: int, key_len: int, device=None) -> torch.Tensor:
    """Boolean ``(L, S)`` mask, True where query ``i`` may see key ``j`` (``j <= i``)."""
    return _cores.tril_mask(check_positive_int(query_len, "query_len"),
                            check_positive_int(key_len, "key_len"), device)


def _upcast(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
    """``q, k, v`` in the dtype the scores and softmax are computed in."""
    work = _cores.compute_dtype(q.dtype)
    return q.to(work), k.to(work), v.to(work)


def _smooth(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool,
            log_gram: Callable[..., torch.Tensor]):
    """Nadaraya-Watson regression of ``v`` on ``k`` at ``q`` with the kernel whose log-Gram
    matrix ``log_gram(q, k, mask)`` gives, computed in float32 for 16-bit inputs."""
    dtype = q.dtype
    q, k, v = _upcast(q, k, v)
    mask = _cores.tril_mask(q.shape[-2], k.shape[-2], q.device) if causal else None
    output, weights = _cores.kernel_smoother(log_gram(q, k, mask), v, log_space=True, mask=mask)
    return output.to(dtype), weights.to(dtype)


def softmax_attention(q, k, v, *, causal: bool = False, scale=None):
    """Scaled dot-product attention written out: ``softmax(q k^T * scale) v``.

    Returns ``(output, weights)`` with output ``(..., L, Ev)`` and weights ``(..., L, S)``.
    """
    q, k, v = as_qkv(q, k, v)
    causal = check_bool(causal, "causal")
    s = _scale(scale, q.shape[-1])
    dtype = q.dtype
    q, k, v = _upcast(q, k, v)
    scores = (q @ k.mT) * s
    if causal:
        scores = scores.masked_fill(~_cores.tril_mask(q.shape[-2], k.shape[-2], q.device),
                                    float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return (weights @ v).to(dtype), weights.to(dtype)


def attention_as_nadaraya_watson(q, k, v, *, causal: bool = False, scale=None):
    """Attention computed as Nadaraya-Watson regression with the ``exp_dot`` kernel.

    The queries are the test points, the keys the training inputs, the values the
    targets, and the kernel ``exp(q . k / t)`` with temperature ``t = 1 / scale``, normalised
    in log space (:func:`kernelnotes.nadaraya_watson` with :func:`kernelnotes.exp_dot`).
    Returns ``(output, weights)`` exactly like :func:`softmax_attention`.
    """
    q, k, v = as_qkv(q, k, v)
    causal = check_bool(causal, "causal")
    temperature = 1 / _scale(scale, q.shape[-1])
    return _smooth(q, k, v, causal,
                   lambda q, k, mask: _cores.dot_scores(q, k, 1 / temperature))


def l2_normalize(x, dim: int = -1, eps: float = 1e-12) -> torch.Tensor:
    """Scale ``x`` to unit Euclidean length along ``dim``: ``x / max(|x|, eps)``.

    The same rule as :func:`torch.nn.functional.normalize`; a vector shorter than ``eps``
    (the zero vector, say) is divided by ``eps`` rather than by its own norm, so it stays
    near zero instead of turning into NaN. ``eps`` must be representable in ``x``'s dtype
    (at least its smallest normal number, ``torch.finfo(x.dtype).tiny``).
    """
    x = as_tensor(x, "x")
    eps = _check_eps(eps, x.dtype)
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"dim must be an integer axis of x, got {type(dim).__name__}")
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"dim must be an integer axis of x (which has {x.dim()} axes), "
                         f"got {dim!r}")
    return _unit(x, dim, eps)


def _check_eps(eps, dtype: torch.dtype) -> float:
    eps = check_positive(eps, "eps")
    if eps < torch.finfo(dtype).tiny:
        raise ValueError(f"eps must be at least the smallest normal {dtype} number, "
                         f"{torch.finfo(dtype).tiny:g}, got {eps:g}")
    return eps


def _unit(x: torch.Tensor, dim: int, eps: float) -> torch.Tensor:
    return x / torch.linalg.vector_norm(x, dim=dim, keepdim=True).clamp_min(eps)


def qk_normalize(q, k, eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
    """QK-normalization: every query and key scaled to unit length along the feature axis.

    After it, ``q . k`` is the cosine of the angle between them and the attention kernel
    ``exp(q . k / t)`` is a Gaussian on the unit sphere with bandwidth ``sqrt(t)``.
    """
    q = as_tensor(q, "q")
    k = as_tensor(k, "k", like=q)
    check_min_dims(q, "q", 1, "(..., E)")
    check_min_dims(k, "k", 1, "(..., E)")
    check_same_dtype((q, "q"), (k, "k"))
    eps = _check_eps(eps, q.dtype)
    return _unit(q, -1, eps), _unit(k, -1, eps)


def gaussian_attention(q, k, v, *, causal: bool = False, scale=None,
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
    key_norm_correction : if True, weight key ``j`` by the extra factor ``exp(|k_j|^2 / (2t))``.
        The Gaussian log-weight plus this log-factor is ``q_i . k_j / t`` minus the query's
        own ``|q_i|^2 / (2t)``, which normalisation cancels, so the weights are computed as
        ``softmax(q . k / t)``: softmax attention for any ``q`` and ``k``, without the
        cancellation of large squared norms that would cost precision in low precision.

    Returns
    -------
    output : ``(..., L, Ev)``
    weights : ``(..., L, S)``, non-negative, each row summing to 1.
    """
    q, k, v = as_qkv(q, k, v)
    causal = check_bool(causal, "causal")
    key_norm_correction = check_bool(key_norm_correction, "key_norm_correction")
    s = _scale(scale, q.shape[-1])
    if key_norm_correction:
        return _smooth(q, k, v, causal, lambda q, k, mask: _cores.dot_scores(q, k, s))
    bandwidth = math.sqrt(1 / s)
    return _smooth(q, k, v, causal,
                   lambda q, k, mask: _cores.gaussian_scores(q, k, bandwidth, mask))


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
