"""Pairwise kernels as Gram matrices: ``(..., n, d) x (..., m, d) -> (..., n, m)``.

Every kernel is a plain function ``kernel(x, y, **params)``. Kernels of the form
``exp(score)`` also carry ``kernel.log_gram(x, y, **params)``, the score itself, which
lets :func:`kernelnotes.smoothing.nadaraya_watson` normalise in log space (log-sum-exp)
instead of dividing numbers that may have under- or overflowed.
"""

from __future__ import annotations

import math

import torch

from ._validation import (
    as_tensor,
    broadcast_batch,
    check_finite,
    check_min_dims,
    check_positive,
    check_same_dtype,
    check_same_last_dim,
)

__all__ = ["exp_dot", "gaussian", "imq", "polynomial", "squared_distances", "yat"]


def _pair(x, y, names: tuple[str, str] = ("x", "y")) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a pair of point sets ``(..., n, d)`` and ``(..., m, d)``."""
    x = as_tensor(x, names[0])
    y = as_tensor(y, names[1], like=x)
    check_min_dims(x, names[0], 2, "(..., n, d)")
    check_min_dims(y, names[1], 2, "(..., m, d)")
    check_same_last_dim(x, y, names)
    check_same_dtype((x, names[0]), (y, names[1]))
    broadcast_batch({names[0]: x.shape, names[1]: y.shape}, trailing=2)
    return x, y


def squared_distances(x, y) -> torch.Tensor:
    """``|x_i - y_j|^2`` for every pair, clamped at 0 against rounding."""
    x, y = _pair(x, y)
    sq = (x * x).sum(-1)[..., :, None] + (y * y).sum(-1)[..., None, :] - 2 * x @ y.mT
    return sq.clamp_min(0)


def _log_gaussian(x, y, bandwidth) -> torch.Tensor:
    h = check_positive(bandwidth, "bandwidth")
    return -squared_distances(x, y) / (2 * h * h)


def gaussian(x, y, bandwidth) -> torch.Tensor:
    """Gaussian (RBF) kernel ``exp(-|x - y|^2 / (2 bandwidth^2))``."""
    return torch.exp(_log_gaussian(x, y, bandwidth))


gaussian.log_gram = _log_gaussian


def _log_exp_dot(q, k, temperature=None) -> torch.Tensor:
    q, k = _pair(q, k, ("q", "k"))
    t = math.sqrt(q.shape[-1]) if temperature is None else check_positive(temperature,
                                                                          "temperature")
    return (q @ k.mT) / t


def exp_dot(q, k, temperature=None) -> torch.Tensor:
    """Exponentiated dot product ``exp(q . k / temperature)``; temperature defaults to sqrt(d).

    This is the (unnormalised) kernel of softmax attention. It overflows float32 once
    ``q . k / temperature`` passes about 88; smoothers use ``exp_dot.log_gram`` instead.
    """
    return torch.exp(_log_exp_dot(q, k, temperature))


exp_dot.log_gram = _log_exp_dot


def imq(x, y, c=1.0, beta=1.0) -> torch.Tensor:
    """Inverse multiquadric ``(c^2 + |x - y|^2)^(-beta)``, positive definite for c, beta > 0."""
    c = check_positive(c, "c")
    beta = check_positive(beta, "beta")
    return (c * c + squared_distances(x, y)) ** (-beta)


def polynomial(x, y, b=1.0, degree=2) -> torch.Tensor:
    """Polynomial kernel ``(x . y + b)^degree``; positive semi-definite when b >= 0."""
    x, y = _pair(x, y)
    if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1:
        raise ValueError(f"degree must be a positive integer, got {degree!r}")
    b = check_finite(b, "b")
    return (x @ y.mT + b) ** degree


def yat(w, x, b=1.0, eps=1.0, *, require_psd=True) -> torch.Tensor:
    """Yat kernel ``(w . x + b)^2 / (|x - w|^2 + eps)`` as a ``(..., n, m)`` Gram matrix.

    The product of the polynomial kernel ``(w . x + b)^2`` and the inverse multiquadric
    ``1 / (|x - w|^2 + eps)`` (:func:`imq` with ``c = sqrt(eps)``, ``beta = 1``). Both
    factors are positive semi-definite when ``b >= 0``, so their product is too (Schur
    product theorem). For ``b > 0`` it also dominates ``b^2`` times that IMQ in the Loewner
    order, which makes its RKHS universal; at ``b = 0`` every section vanishes at the
    origin, so it is PSD but not universal.

    Parameters
    ----------
    w : ``(..., n, d)`` first point set (the centres, in a Yat layer).
    x : ``(..., m, d)`` second point set (the inputs).
    b : real scalar (number or one-element tensor), the alignment bias.
    eps : positive scalar, keeps the denominator away from zero.
    require_psd : if True (the default) a negative ``b``, for which the Gram matrix can be
        indefinite, is rejected. Pass False to evaluate the formula anyway.

    ``b`` and ``eps`` may be tensors that require grad; gradients flow through them.
    """
    w, x = _pair(w, x, ("w", "x"))
    b_value = check_finite(b, "b")
    check_positive(eps, "eps")
    if require_psd and b_value < 0:
        raise ValueError(
            f"b must be >= 0 for the Yat kernel to be positive semi-definite (a Mercer "
            f"kernel), got b={b_value}; pass require_psd=False to evaluate it anyway"
        )
    return _yat(w, x, b, eps)


def _yat(w: torch.Tensor, x: torch.Tensor, b, eps) -> torch.Tensor:
    """The Yat formula on already validated inputs (used by :class:`kernelnotes.yat.YatLayer`)."""
    return (w @ x.mT + b) ** 2 / (squared_distances(w, x) + eps)
