"""Pairwise kernels as Gram matrices: ``(..., n, d) x (..., m, d) -> (..., n, m)``.

Every kernel is a plain function ``kernel(x, z, **params)`` of two point sets. Kernels of the
form ``exp(score)`` also carry ``kernel.log_gram(x, z, **params)``: the score, that is the
log of the Gram matrix up to an additive constant per row (per point of ``x``), which any
row normalisation cancels. It lets :func:`kernelnotes.smoothing.nadaraya_watson` normalise
in log space (log-sum-exp) instead of dividing numbers that may have under- or overflowed.
"""

from __future__ import annotations

import math

import torch

from . import _cores
from ._validation import (
    as_tensor,
    broadcast_batch,
    check_finite,
    check_min_dims,
    check_positive,
    check_positive_int,
    check_same_dtype,
    check_same_last_dim,
)

__all__ = ["exp_dot", "gaussian", "imq", "polynomial", "squared_distances", "yat"]


def _pair(x, z, names: tuple[str, str] = ("x", "z")) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a pair of point sets ``(..., n, d)`` and ``(..., m, d)`` with ``d >= 1``."""
    x = as_tensor(x, names[0])
    z = as_tensor(z, names[1], like=x)
    check_min_dims(x, names[0], 2, "(..., n, d)")
    check_min_dims(z, names[1], 2, "(..., m, d)")
    check_same_last_dim(x, z, names)
    check_same_dtype((x, names[0]), (z, names[1]))
    broadcast_batch({names[0]: x.shape, names[1]: z.shape}, trailing=2)
    return x, z


def squared_distances(x, z) -> torch.Tensor:
    """``|x_i - z_j|^2`` for every pair, clamped at 0 against rounding."""
    return _cores.squared_distances(*_pair(x, z))


def _log_gaussian(x, z, bandwidth) -> torch.Tensor:
    h = check_positive(bandwidth, "bandwidth")
    return _cores.gaussian_scores(*_pair(x, z), h)


def gaussian(x, z, bandwidth) -> torch.Tensor:
    """Gaussian (RBF) kernel ``exp(-|x - z|^2 / (2 bandwidth^2))``."""
    h = check_positive(bandwidth, "bandwidth")
    return torch.exp(_cores.gaussian_exponent(_cores.squared_distances(*_pair(x, z)), h))


gaussian.log_gram = _log_gaussian


def _temperature(temperature, dim: int) -> float:
    return math.sqrt(dim) if temperature is None else check_positive(temperature, "temperature")


def _log_exp_dot(q, k, temperature=None) -> torch.Tensor:
    q, k = _pair(q, k, ("q", "k"))
    return _cores.dot_scores(q, k, 1 / _temperature(temperature, q.shape[-1]))


def exp_dot(q, k, temperature=None) -> torch.Tensor:
    """Exponentiated dot product ``exp(q . k / temperature)``; temperature defaults to sqrt(d).

    This is the (unnormalised) kernel of softmax attention. It overflows float32 once
    ``q . k / temperature`` passes about 88; smoothers use ``exp_dot.log_gram`` instead.
    """
    return torch.exp(_log_exp_dot(q, k, temperature))


exp_dot.log_gram = _log_exp_dot


def imq(x, z, c=1.0, beta=1.0) -> torch.Tensor:
    """Inverse multiquadric ``(c^2 + |x - z|^2)^(-beta)``, positive definite for c, beta > 0."""
    c = check_positive(c, "c")
    beta = check_positive(beta, "beta")
    return (c * c + _cores.squared_distances(*_pair(x, z))) ** (-beta)


def polynomial(x, z, b=1.0, degree=2) -> torch.Tensor:
    """Polynomial kernel ``(x . z + b)^degree``; positive semi-definite when b >= 0."""
    x, z = _pair(x, z)
    degree = check_positive_int(degree, "degree")
    b = check_finite(b, "b")
    return (x @ z.mT + b) ** degree


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

    ``b`` and ``eps`` may be tensors that require grad; gradients flow through them. Reading
    their values for the checks synchronises with their device; the training path of
    :class:`kernelnotes.YatLayer` calls the unchecked :func:`kernelnotes._cores.yat_gram`.
    """
    w, x = _pair(w, x, ("w", "x"))
    b_value = check_finite(b, "b")
    check_positive(eps, "eps")
    if require_psd and b_value < 0:
        raise ValueError(
            f"b must be >= 0 for the Yat kernel to be positive semi-definite (a Mercer "
            f"kernel), got b={b_value}; pass require_psd=False to evaluate it anyway"
        )
    return _cores.yat_gram(w, x, b, eps)
