"""The superposition toy model of Elhage et al. (2022) and the geometry of what it learns.

:class:`ToyModel` squeezes ``n`` sparse features through ``m < n`` hidden dimensions,
``x' = ReLU(W^T W x + b)``; :func:`sparse_features` draws its inputs and
:func:`feature_importance` weights its loss (it is trained by
:func:`kernelnotes.training.train_toy_model`). :func:`superposition_geometry` and
:func:`angular_gaps` describe where the trained features sit.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ._validation import (
    as_module_input,
    as_tensor,
    check_float_dtype,
    check_generator,
    check_positive,
    check_positive_int,
    check_probability,
)

__all__ = [
    "ToyModel",
    "angular_gaps",
    "feature_importance",
    "sparse_features",
    "superposition_geometry",
]


def feature_importance(n_features: int, decay: float = 0.9, *, dtype=None) -> torch.Tensor:
    """Importances ``decay**i`` for ``i = 0..n_features-1``, the toy model's loss weights."""
    n_features = check_positive_int(n_features, "n_features")
    decay = check_positive(decay, "decay")
    dtype = check_float_dtype(dtype)
    if (n_features - 1) * math.log(decay) >= math.log(torch.finfo(dtype).max):
        raise ValueError(f"decay={decay:g} overflows {dtype}: decay**{n_features - 1} is too "
                         f"large")
    return decay ** torch.arange(n_features, dtype=dtype)


def sparse_features(batch_size: int, n_features: int, sparsity: float, *,
                    generator: torch.Generator | None = None, dtype=None) -> torch.Tensor:
    """Synthetic toy-model inputs ``(batch_size, n_features)``.

    Each entry is independently 0 with probability ``sparsity`` and otherwise drawn from
    ``U[0, 1]`` (Elhage et al., 2022). ``sparsity = 0`` gives dense features.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    n_features = check_positive_int(n_features, "n_features")
    sparsity = check_probability(sparsity, "sparsity")
    generator = check_generator(generator)
    dtype = check_float_dtype(dtype)
    values = torch.rand(batch_size, n_features, generator=generator, dtype=dtype)
    present = torch.rand(batch_size, n_features, generator=generator, dtype=dtype) >= sparsity
    return values * present


class ToyModel(nn.Module):
    """Superposition toy model ``x' = ReLU(W^T W x + b)`` with ``W`` of shape ``(m, n)``.

    ``h = W x`` squeezes ``n_features`` into ``n_hidden`` dimensions; column ``W[:, i]`` is
    the direction in which feature ``i`` is stored. ``W`` starts Xavier-normal and ``b`` at
    zero, as in the paper's code. ``generator`` draws the initial ``W``; ``dtype`` and
    ``device`` are those of the parameters.
    """

    def __init__(self, n_features: int = 5, n_hidden: int = 2, *,
                 generator: torch.Generator | None = None, dtype=None, device=None):
        super().__init__()
        self.n_features = check_positive_int(n_features, "n_features")
        self.n_hidden = check_positive_int(n_hidden, "n_hidden")
        dtype = check_float_dtype(dtype)
        generator = check_generator(generator)
        std = math.sqrt(2 / (n_features + n_hidden))
        self.W = nn.Parameter(torch.randn(n_hidden, n_features, generator=generator,
                                          dtype=dtype).to(device) * std)
        self.b = nn.Parameter(torch.zeros(n_features, dtype=dtype, device=device))

    def hidden(self, x) -> torch.Tensor:
        """The compressed representation ``h = W x``: ``(..., n_hidden)``."""
        return as_module_input(x, self, self.n_features) @ self.W.mT

    def forward(self, x) -> torch.Tensor:
        """The reconstruction ``ReLU(W^T W x + b)``: ``(..., n_features)``."""
        return F.relu(self.hidden(x) @ self.W + self.b)


def superposition_geometry(W) -> tuple[torch.Tensor, torch.Tensor]:
    """How the features sit in the hidden space of a toy model with weights ``W`` ``(m, n)``.

    Returns
    -------
    norms : ``(n,)``, ``|W_i|``; near 1 when feature ``i`` is represented, near 0 when dropped.
    interference : ``(n,)``, ``sum_{j != i} (W_i/|W_i| . W_j)^2``, how much the other features
        overlap feature ``i``'s direction (0 when it has a dimension of its own).
    """
    W = as_tensor(W, "W")
    if W.dim() != 2:
        raise ValueError(f"W must have shape (n_hidden, n_features), got {tuple(W.shape)}")
    norms = W.norm(dim=0)
    unit = W / norms.clamp_min(torch.finfo(W.dtype).tiny)
    overlap = (unit.mT @ W) ** 2
    own = torch.eye(W.shape[1], dtype=torch.bool, device=W.device)
    return norms, overlap.masked_fill(own, 0).sum(-1)


def angular_gaps(W) -> torch.Tensor:
    """Angles between neighbouring feature directions of a toy model with 2 hidden dims.

    ``W`` is ``(2, n)``; its columns are sorted by angle around the origin and the ``n``
    gaps between consecutive ones (wrapping around, summing to ``2 pi``) are returned in
    radians. A regular pentagon has five gaps of ``2 pi / 5``; two orthogonal features plus
    three dropped ones do not.
    """
    W = as_tensor(W, "W")
    if W.dim() != 2 or W.shape[0] != 2 or W.shape[1] == 0:
        raise ValueError(f"W must have shape (2, n_features) with n_features >= 1, got "
                         f"{tuple(W.shape)}")
    angles = torch.atan2(W[1], W[0]).sort().values
    return torch.diff(torch.cat([angles, angles[:1] + 2 * math.pi]))
