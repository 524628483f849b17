"""The Yat kernel and a layer that is, by construction, a finite kernel expansion.

``YatLayer`` computes ``f(x) = sum_i alpha_i k_{b,eps}(w_i, x)`` over learned centres
``w_i``, with the Yat kernel ``k_{b,eps}(w, x) = (w . x + b)^2 / (|x - w|^2 + eps)``
(:func:`kernelnotes.kernels.yat`). Because every output is a sum of kernel sections, the
layer can say how much each centre contributed to an output
(:meth:`YatLayer.contributions`) and how large the function it computes is in the RKHS
(:meth:`YatLayer.rkhs_norm`) — two things a ReLU MLP has no counterpart for.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from . import _cores
from ._validation import (
    as_tensor,
    check_finite,
    check_float_dtype,
    check_generator,
    check_positive,
    check_positive_int,
    check_same_dtype,
)
from .kernels import yat

__all__ = ["YatLayer", "yat"]

#: Floor added to the learned ``eps``, so it stays positive even if softplus underflows.
MIN_EPS = 1e-6


def _softplus_inverse(value: float) -> float:
    """The raw parameter whose softplus is ``value > 0`` (stable for large values)."""
    return value + math.log(-math.expm1(-value))


class YatLayer(nn.Module):
    """``f(x) = sum_i alpha_i k_{b,eps}(w_i, x)``: a learned-centre Yat kernel expansion.

    Parameters
    ----------
    in_features : dimension ``d`` of the inputs and centres.
    out_features : number of outputs ``p``; each has its own coefficients ``alpha``.
    n_centres : number of centres ``w_i`` (the hidden units).
    b : initial alignment bias, ``>= 0``. It is shared by all centres (so the layer is one
        kernel) and kept ``>= 0`` by a softplus parametrisation when ``learn_b`` is True,
        which needs ``b > 0`` to start from; ``b = 0`` is allowed with ``learn_b=False``.
        Only ``b > 0`` makes the kernel universal.
    eps : initial ``eps > MIN_EPS``, kept above ``MIN_EPS`` by a softplus parametrisation
        when ``learn_eps`` is True.
    learn_b, learn_eps : whether ``b`` and ``eps`` are trained or fixed.
    centres : optional ``(n_centres, in_features)`` initial centres (a sample of the training
        inputs is a good choice); by default standard normal draws.
    generator : optional ``torch.Generator`` for the initial centres and coefficients.
    dtype, device : of the parameters.

    Attributes
    ----------
    centres : ``(n_centres, in_features)`` parameter, the ``w_i``.
    alpha : ``(out_features, n_centres)`` parameter, the expansion coefficients.
    b, eps : the current kernel parameters, as 0-d tensors (properties).
    """

    def __init__(self, in_features: int, out_features: int, n_centres: int, *, b=1.0,
                 eps=1.0, learn_b: bool = True, learn_eps: bool = True, centres=None,
                 generator: torch.Generator | None = None, dtype=None, device=None):
        super().__init__()
        in_features = check_positive_int(in_features, "in_features")
        out_features = check_positive_int(out_features, "out_features")
        n_centres = check_positive_int(n_centres, "n_centres")
        b = check_finite(b, "b")
        if b < 0:
            raise ValueError(f"b must be >= 0 so that the layer is a Mercer (PSD) kernel "
                             f"expansion, got b={b}")
        if learn_b and b == 0:
            raise ValueError("b must be > 0 when learn_b=True (b is learned through a "
                             "softplus, which never reaches 0); pass learn_b=False for b = 0")
        eps = check_positive(eps, "eps")
        if eps <= MIN_EPS:
            raise ValueError(f"eps must be greater than MIN_EPS={MIN_EPS:g}, got eps={eps}")
        factory = {"dtype": check_float_dtype(dtype), "device": device}
        if b * b >= torch.finfo(factory["dtype"]).max:
            raise ValueError(f"b={b:g} is too large for {factory['dtype']}: (w . x + b)^2 "
                             f"overflows")
        generator = check_generator(generator)
        self.in_features, self.out_features, self.n_centres = in_features, out_features, n_centres

        if centres is None:
            centres = torch.randn(n_centres, in_features, generator=generator,
                                  dtype=factory["dtype"]).to(device)
        else:
            centres = as_tensor(centres, "centres").to(**factory)
            if centres.shape != (n_centres, in_features):
                raise ValueError(f"centres must have shape ({n_centres}, {in_features}), "
                                 f"got {tuple(centres.shape)}")
        self.centres = nn.Parameter(centres.clone())
        bound = 1 / math.sqrt(n_centres)
        alpha = torch.rand(out_features, n_centres, generator=generator,
                           dtype=factory["dtype"]).to(device)
        self.alpha = nn.Parameter((2 * alpha - 1) * bound)

        # Learned values live behind softplus so no optimiser step can leave the range.
        self._learn_b, self._learn_eps = learn_b, learn_eps
        raw_b = torch.tensor(_softplus_inverse(b) if learn_b else b, **factory)
        raw_eps = torch.tensor(_softplus_inverse(eps - MIN_EPS) if learn_eps else eps,
                               **factory)
        if learn_b:
            self.raw_b = nn.Parameter(raw_b)
        else:
            self.register_buffer("raw_b", raw_b)
        if learn_eps:
            self.raw_eps = nn.Parameter(raw_eps)
        else:
            self.register_buffer("raw_eps", raw_eps)

    @property
    def b(self) -> torch.Tensor:
        """The shared alignment bias, ``>= 0``."""
        return F.softplus(self.raw_b) if self._learn_b else self.raw_b

    @property
    def eps(self) -> torch.Tensor:
        """The shared ``eps``, ``> MIN_EPS`` while learned."""
        return F.softplus(self.raw_eps) + MIN_EPS if self._learn_eps else self.raw_eps

    def _flat_kernel(self, x) -> tuple[torch.Tensor, torch.Size]:
        """Kernel values ``(N, n_centres)`` for inputs ``(..., in_features)``, flattened."""
        x = as_tensor(x, "x", like=self.centres)
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (..., {self.in_features}), got "
                             f"{tuple(x.shape)}")
        check_same_dtype((x, "x"), (self.centres, "the layer's parameters"))
        lead = x.shape[:-1]
        # the unchecked Yat core: b and eps are tensors here, and reading them would sync
        k = _cores.yat_gram(self.centres, x.reshape(-1, self.in_features), self.b, self.eps)
        return k.mT, lead

    def forward(self, x) -> torch.Tensor:
        """``f(x)`` for inputs ``(..., in_features)``: shape ``(..., out_features)``."""
        k, lead = self._flat_kernel(x)
        return (k @ self.alpha.mT).reshape(*lead, self.out_features)

    def contributions(self, x) -> torch.Tensor:
        """Each centre's share ``alpha_oi k(w_i, x)`` of each output.

        Returns ``(..., out_features, n_centres)`` for inputs ``(..., in_features)``;
        summing over the last axis gives ``self(x)`` (up to rounding).
        """
        k, lead = self._flat_kernel(x)
        return (k[:, None, :] * self.alpha).reshape(*lead, self.out_features, self.n_centres)

    def gram(self) -> torch.Tensor:
        """Gram matrix ``K[i, j] = k(w_i, w_j)`` of the centres, ``(n_centres, n_centres)``."""
        return _cores.yat_gram(self.centres, self.centres, self.b, self.eps)

    def rkhs_norm(self, *, squared=False) -> torch.Tensor:
        """RKHS norm ``sqrt(alpha_o^T K alpha_o)`` of each output function, ``(out_features,)``.

        Computed in float64 and differentiable, with no host synchronisation (it may serve
        as a training penalty); prefer ``squared=True`` there, whose gradient stays finite at
        zero. Equals :func:`kernelnotes.rkhs_norm` of ``alpha`` on :meth:`gram`.
        """
        K = self.gram().to(torch.float64)
        form = _cores.quadratic_form(self.alpha.to(torch.float64), (K + K.mT) / 2)
        return form if squared else form.clamp_min(0).sqrt()

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"n_centres={self.n_centres}, b={self.b.item():.4g}, "
                f"eps={self.eps.item():.4g}")
