"""Bare computational cores: the formulas themselves, on tensors already checked.

Nothing here validates, converts or synchronises with the device: the public functions of
:mod:`kernelnotes.kernels`, :mod:`kernelnotes.smoothing`, :mod:`kernelnotes.attention`,
:mod:`kernelnotes.rkhs` and :mod:`kernelnotes.yat` check their arguments once (with
:mod:`kernelnotes._validation`) and then call these. Inside the package they are the way one
module reuses another's arithmetic; outside it, prefer the checked public functions.

Point sets follow the package's pairwise convention ``(..., n, d) x (..., m, d) -> (..., n, m)``.
"""

from __future__ import annotations

import torch

__all__ = [
    "compute_dtype",
    "dot_scores",
    "gaussian_exponent",
    "gaussian_scores",
    "kernel_smoother",
        "quadratic_form",
    "squared_distances",
    "tril_mask",
    "yat_gram",
]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype to compute scores and softmax in: float32 for 16-bit inputs, else ``dtype``.

    float16 overflows past 65504 and bfloat16 keeps 8 significant bits; computing the scores
    and the normalisation in float32 and rounding the result once keeps them finite and
    accurate, as fused attention kernels do.
    """
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def squared_distances(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``|x_i - z_j|^2`` for every pair, clamped at 0 against rounding."""
    sq = (x * x).sum(-1)[..., :, None] + (z * z).sum(-1)[..., None, :] - 2 * x @ z.mT
    return sq.clamp_min(0)


def gaussian_exponent(sq: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """``-sq / (2 bandwidth^2)`` for squared distances ``sq``, exact 0 where ``sq`` is 0.

    Dividing by the bandwidth twice, instead of by its square, and keeping zeros at zero
    means no bandwidth gives 0 / 0: ``bandwidth^2`` underflows (to 0 in float32 below about
    1e-23) long before the bandwidth itself does.
    """
    return torch.where(sq > 0, -(sq / bandwidth) / (2 * bandwidth), torch.zeros_like(sq))


def gaussian_scores(x: torch.Tensor, z: torch.Tensor, bandwidth: float,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """``-(|x_i - z_j|^2 - min_l |x_i - z_l|^2) / (2 bandwidth^2)``.

    The log of the Gaussian Gram matrix up to a constant per row (which row normalisation
    cancels). Shifting each row so that its nearest point (among those ``mask`` keeps) scores
    exactly 0 keeps at least one finite score per row however small the bandwidth: the
    weights tend to the nearest neighbour instead of 0 / 0.
    """
    sq = squared_distances(x, z)
    if sq.shape[-1] > 0:
        kept = sq if mask is None else sq.masked_fill(~mask, float("inf"))
        sq = sq - kept.amin(-1, keepdim=True)
    return gaussian_exponent(sq, bandwidth)


def dot_scores(q: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale * q_i . k_j``, the logits of softmax attention."""
    return (q @ k.mT) * scale


def yat_gram(w: torch.Tensor, x: torch.Tensor, b, eps) -> torch.Tensor:
    """Yat kernel ``(w_i . x_j + b)^2 / (|x_j - w_i|^2 + eps)``; ``b``, ``eps`` may be tensors."""
    return (w @ x.mT + b) ** 2 / (squared_distances(w, x) + eps)


def tril_mask(query_len: int, key_len: int, device=None) -> torch.Tensor:
    """Boolean ``(L, S)`` causal mask, True where ``j <= i`` (SDPA's top-left alignment)."""
    return torch.ones(query_len, key_len, dtype=torch.bool, device=device).tril()


def kernel_smoother(scores: torch.Tensor, targets: torch.Tensor, *, log_space: bool,
                    mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Nadaraya-Watson on a Gram matrix: ``(weights @ targets, weights)``.

    ``weights`` are the rows of ``scores`` normalised to sum to 1. ``log_space=True``: the
    scores are log-weights and the weights their softmax (masked entries get ``-inf``).
    Otherwise the scores are non-negative kernel values divided by their row sums (masked
    entries get 0). ``mask`` (boolean, broadcastable) keeps the True entries.
    """
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf") if log_space else 0.0)
    if log_space:
        weights = torch.softmax(scores, dim=-1)
    else:
        weights = scores / scores.sum(-1, keepdim=True)
    return weights @ targets, weights


def quadratic_form(alpha: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """``alpha^T K alpha`` for ``alpha`` ``(..., n)`` and ``K`` ``(..., n, n)``: shape ``(...)``."""
    return (alpha[..., None, :] @ K @ alpha[..., :, None])[..., 0, 0]
