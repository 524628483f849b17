"""Feature maps ``phi`` of linear attention, behind one small protocol.

A feature map turns queries and keys ``(..., n, d)`` into non-negative features
``(..., n, m)``; the kernel of the attention is ``K(q, k) = phi(q) . phi(k)``. It may treat
queries and keys differently (FAVOR+ stabilises them differently), so it is called as
``phi(x, is_query)``, and it says by which constant it scales the key features
(:meth:`FeatureMap.key_scale`) so that ``eps`` can be scaled alike and the result does not
depend on that constant.

:data:`FEATURE_MAPS` is the one registry of named maps; the Triton kernel applies them
itself, by the integer ids of :data:`FEATURE_IDS`, which derive from the registry's order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from .._validation import as_tensor, check_bool, check_generator, check_positive_int

__all__ = [
    "FEATURE_IDS",
    "FEATURE_MAPS",
    "ElementwiseMap",
    "FavorFeatures",
    "FeatureMap",
    "compute_dtype",
    "elu_plus_one",
    "resolve_feature_map",
]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for float64 inputs, float32 for every other floating dtype."""
    return torch.float64 if dtype == torch.float64 else torch.float32


@runtime_checkable
class FeatureMap(Protocol):
    """What :func:`~kernelnotes.linear_attention` needs from a feature map."""

    def __call__(self, x: torch.Tensor, is_query: bool) -> torch.Tensor:
        """Features ``(..., n, m)`` of ``x`` ``(..., n, d)`` (float32 or float64)."""

    def key_scale(self, dtype: torch.dtype) -> float | torch.Tensor:
        """The constant every key feature is multiplied by (1 for most maps)."""


#: Elements per slice and thread of the elementwise loop of elu+1: its temporary stays in
#: cache.
_SLICE = 2**16

_LOG2_E = 1 / math.log(2)


def _exp_of_nonpositive(t: torch.Tensor) -> torch.Tensor:
    """``exp(t)`` in place, for ``t <= 0``.

    float32 as ``exp2(t log2(e))``, 2.5-3 times faster than ``exp`` on the AVX-512 CPU this
    was measured on (0.29 against 0.84 ns an element); rounding ``t log2(e)`` adds a relative
    error of at most ``|t| 2^-24``, under 1e-6 for ``t >= -16`` and never a cancellation (the
    features keep their relative accuracy however negative ``t`` is). float64 as ``exp``.
    """
    if t.dtype == torch.float32:
        return t.mul_(_LOG2_E).exp2_()
    return t.exp_()


def _elu_plus_one_values(x: torch.Tensor) -> torch.Tensor:
    """``max(exp(min(x, 0)), x + 1)``, without autograd.

    Eagerly the passes run slice by slice into the output, so the one temporary
    (``x + 1``) is a cache-sized buffer, not a fresh full-size one; under ``torch.compile``
    the plain expression is left to the compiler.
    """
    if torch.compiler.is_compiling():
        return torch.maximum(_exp_of_nonpositive(x.clamp(max=0)), x + 1)
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    flat_x, flat_y = x.reshape(-1), y.view(-1)
    # a slice per thread: each operation on a slice is one parallel region
    size = _SLICE * torch.get_num_threads()
    for start in range(0, flat_x.numel(), size):
        x_s, y_s = flat_x[start:start + size], flat_y[start:start + size]
        # the min first: exp(x) could overflow
        _exp_of_nonpositive(torch.clamp(x_s, max=0, out=y_s))
        torch.maximum(y_s, x_s + 1, out=y_s)
    return y


class _EluPlusOne(torch.autograd.Function):
    """``elu(x) + 1`` as ``max(exp(min(x, 0)), x + 1)``, with gradient ``g * min(y, 1)``.

    The two branches meet at 1 for ``x = 0`` and ``exp(x) >= x + 1`` everywhere, so the
    max picks ``exp(x)`` for ``x <= 0`` and ``x + 1`` above; the gradient needs only the
    output, so only ``y`` is saved.
    """

    @staticmethod
    def forward(ctx, x):
        y = _elu_plus_one_values(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return y.clamp(max=1).mul_(grad)


def elu_plus_one(x: torch.Tensor) -> torch.Tensor:
    """``elu(x) + 1``, the feature map of Katharopoulos et al. (2020), computed in float32.

    Written as ``max(exp(min(x, 0)), x + 1)``: the textbook ``1 + (exp(x) - 1)`` cancels to
    exactly 0 in low precision (in bfloat16 once x < -6, in float32 once x < -17), leaving
    the attention denominator with only ``eps``. In float32 the exponential is
    ``exp2(x log2(e))``, within a relative ``(|x| + 1) 2^-23`` of ``exp(x)`` (faster, and
    still without cancellation); in float64 it is ``exp``.
    """
    x = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    if x.requires_grad and torch.is_grad_enabled():
        return _EluPlusOne.apply(x)
    return _elu_plus_one_values(x)  # no graph to record: skip the Function's overhead


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@dataclass(frozen=True)
class ElementwiseMap:
    """A named map applied to every coordinate alike, to queries and keys alike."""

    name: str
    function: Callable[[torch.Tensor], torch.Tensor]

    def __call__(self, x: torch.Tensor, is_query: bool | None = None) -> torch.Tensor:
        return self.function(x)

    def key_scale(self, dtype: torch.dtype) -> float:
        return 1.0


#: The named feature maps: ``"identity"`` (inputs are already non-negative features),
#: ``"elu+1"`` and ``"relu"``.
FEATURE_MAPS: dict[str, ElementwiseMap] = {
    m.name: m for m in (ElementwiseMap("identity", _identity),
                        ElementwiseMap("elu+1", elu_plus_one),
                        ElementwiseMap("relu", torch.relu))
}

#: The Triton kernel's id of each named map (its ``FEATURE`` constexpr).
FEATURE_IDS: dict[str, int] = {name: i for i, name in enumerate(FEATURE_MAPS)}


class _CallableMap:
    """Adapts a plain callable ``phi(x)`` to the protocol."""

    def __init__(self, function: Callable[[torch.Tensor], torch.Tensor]):
        self.function = function

    def __call__(self, x: torch.Tensor, is_query: bool) -> torch.Tensor:
        return self.function(x)

    def key_scale(self, dtype: torch.dtype) -> float:
        return 1.0


#: Largest key feature FAVOR+ may produce, as ``exp(HEADROOM)``: what is left of the dtype's
#: range holds the sums over keys and the products with values and queries.
_HEADROOM = {torch.float32: 40.0, torch.float64: 600.0}


class FavorFeatures(nn.Module):
    """Positive random features of FAVOR+ (Choromanski et al., 2021) for ``exp(x . y)``.

    ``phi(x) = exp(W x - |x|^2 / 2) / sqrt(m)`` with the ``m`` rows of ``W`` distributed as
    ``N(0, I)``, so that ``E[phi(x) . phi(y)] = exp(x . y)``: the unnormalised softmax kernel.
    With ``orthogonal=True`` the rows are drawn in blocks of exactly orthogonal directions,
    each rescaled to the length of an independent Gaussian vector (the estimate stays
    unbiased and its variance drops). Softmax attention with ``scale = 1/sqrt(d)`` is
    ``exp(q . k / sqrt(d))``: scale queries and keys by ``d ** -0.25`` before the features.

    The projection is a buffer, fixed until :meth:`redraw` is called.

    Parameters
    ----------
    dim : int
        Input dimension ``d``.
    num_features : int
        Number of random features ``m``.
    orthogonal : bool
        Draw orthogonal blocks of directions (FAVOR+) instead of i.i.d. Gaussian rows.
    generator : torch.Generator, optional
        A CPU generator for the draw; the default uses the global RNG.
    device : torch.device, optional
        Where the projection lives.
    """

    projection: torch.Tensor

    def __init__(self, dim: int, num_features: int, *, orthogonal: bool = True,
                 generator: torch.Generator | None = None, device=None):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.num_features = check_positive_int(num_features, "num_features")
        self.orthogonal = check_bool(orthogonal, "orthogonal")
        self.register_buffer("projection", torch.empty(self.num_features, self.dim,
                                                       dtype=torch.float32, device=device))
        self.redraw(generator)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_features={self.num_features}, orthogonal={self.orthogonal}"

    @torch.no_grad()
    def redraw(self, generator: torch.Generator | None = None) -> FavorFeatures:
        """Draw a new projection ``W`` in place (keeping its device and dtype); returns self."""
        generator = check_generator(generator)
        d, m = self.dim, self.num_features
        if self.orthogonal:
            blocks = []
            for _ in range(-(-m // d)):
                gauss = torch.randn(d, d, generator=generator, dtype=torch.float64)
                qmat, rmat = torch.linalg.qr(gauss)
                # the sign fix makes Q Haar-distributed, so each row is uniform on the sphere
                blocks.append((qmat * torch.sign(torch.diagonal(rmat))).T)
            directions = torch.cat(blocks)[:m]
            lengths = torch.randn(m, d, generator=generator, dtype=torch.float64).norm(dim=1)
            w = directions * lengths[:, None]
        else:
            w = torch.randn(m, d, generator=generator, dtype=torch.float64)
        self.projection.copy_(w)
        return self

    def _key_shift(self, dtype: torch.dtype) -> torch.Tensor:
        """The constant subtracted from every key exponent (a 0-d tensor, often 0).

        ``w_r . x - |x|^2 / 2 = (|w_r|^2 - |x - w_r|^2) / 2 <= |w_r|^2 / 2`` for every ``x``,
        so a key exponent never exceeds ``max_r |w_r|^2 / 2``. Shifting by that bound less
        the dtype's headroom keeps every key feature below ``exp(headroom)``, whatever the
        keys: it depends on the projection only, never on the sequence, so causal outputs
        see no later key and states carried from call to call share one scale. (A max over
        the keys, the usual choice, would let later keys reach earlier outputs.)
        """
        bound = self.projection.to(dtype).square().sum(-1).amax() / 2
        return (bound - _HEADROOM[dtype]).clamp(min=0)

    def key_scale(self, dtype: torch.dtype) -> torch.Tensor:
        """``exp(-shift)``: the factor of every key feature (1 unless ``d`` is large)."""
        return torch.exp(-self._key_shift(dtype))

    def forward(self, x: torch.Tensor, is_query: bool | None = None) -> torch.Tensor:
        """Features ``(..., n, num_features)`` of ``x`` of shape ``(..., n, dim)``.

        ``is_query`` picks the stabiliser, a constant subtracted from the exponent before
        ``exp`` so nothing overflows: for queries the max over each row's features (it
        cancels between numerator and denominator of each output, except through ``eps``);
        for keys a constant of the projection (:meth:`_key_shift`; ``linear_attention``
        scales ``eps`` by :meth:`key_scale`, so it changes nothing but rounding). ``None``
        applies none: the plain unbiased estimator. Neither depends on other positions, so
        causal attention stays causal.
        """
        x = as_tensor(x, "x", like=self.projection)
        if x.dim() < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"feature_map: FavorFeatures(dim={self.dim}) needs inputs x of "
                             f"shape (..., {self.dim}), got {tuple(x.shape)}")
        dtype = compute_dtype(x.dtype)
        x = x.to(dtype)
        logits = x @ self.projection.to(dtype).T - (x * x).sum(-1, keepdim=True) / 2
        if is_query is True:
            logits = logits - logits.amax(-1, keepdim=True).detach()
        elif is_query is False:
            logits = logits - self._key_shift(dtype)
        return torch.exp(logits) / math.sqrt(self.num_features)


def resolve_feature_map(feature_map) -> tuple[str | None, FeatureMap]:
    """``(name, phi)``: ``name`` is set for the registry's maps (the Triton kernel applies
    those itself), ``phi`` follows :class:`FeatureMap`."""
    if isinstance(feature_map, str):
        if feature_map not in FEATURE_MAPS:
            raise ValueError(f"feature_map must be one of {sorted(FEATURE_MAPS)}, a "
                             f"FavorFeatures or a callable, got {feature_map!r}")
        return feature_map, FEATURE_MAPS[feature_map]
    if isinstance(feature_map, FeatureMap):
        return None, feature_map
    if callable(feature_map):
        return None, _CallableMap(feature_map)
    raise TypeError(f"feature_map must be a string, a FavorFeatures or a callable, "
                    f"got {type(feature_map).__name__}")
