"""The position-wise MLP, read the way attention is read.

:class:`MLP` is ``W2 s(W1 x + b1) + b2``. The only decomposition of its output that the layer
itself offers is by hidden unit: ``out_o = sum_j W2[o, j] s(w_j . x + b1_j) + b2_o``
(:meth:`MLP.contributions`). Those shares are signed and unbounded and do not sum to 1,
unlike attention weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ._validation import as_module_input, check_positive_int

__all__ = ["MLP"]

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "tanh": torch.tanh,
}


class MLP(nn.Module):
    """Two-layer perceptron ``W2 s(W1 x + b1) + b2`` acting on the last axis of its input.

    Parameters
    ----------
    in_features, hidden_features, out_features : layer widths.
    activation : ``"relu"`` (default), ``"gelu"`` or ``"tanh"``, applied elementwise.
    generator : optional ``torch.Generator`` for the initial weights (PyTorch's default
        ``nn.Linear`` scheme, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``).
    dtype, device : of the parameters (default: torch's default dtype, the CPU).

    Attributes
    ----------
    hidden, readout : the two ``nn.Linear`` maps, ``(W1, b1)`` and ``(W2, b2)``.
    """

    def __init__(self, in_features: int, hidden_features: int, out_features: int = 1, *,
                 activation: str = "relu", generator: torch.Generator | None = None,
                 dtype=None, device=None):
        super().__init__()
        in_features = check_positive_int(in_features, "in_features")
        hidden_features = check_positive_int(hidden_features, "hidden_features")
        out_features = check_positive_int(out_features, "out_features")
        if not isinstance(activation, str):
            raise TypeError(f"activation must be a string, one of {sorted(_ACTIVATIONS)}, "
                            f"got {type(activation).__name__}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {activation!r}")
        self.in_features, self.hidden_features = in_features, hidden_features
        self.out_features, self.activation = out_features, activation
        self.hidden = nn.Linear(in_features, hidden_features, dtype=dtype, device=device)
        self.readout = nn.Linear(hidden_features, out_features, dtype=dtype, device=device)
        if generator is not None:
            # Same distribution as nn.Linear's own initialisation, drawn from `generator`.
            with torch.no_grad():
                for layer in (self.hidden, self.readout):
                    bound = 1 / math.sqrt(layer.in_features)
                    for p in (layer.weight, layer.bias):
                        p.copy_(torch.rand(p.shape, generator=generator, dtype=p.dtype)
                                * 2 * bound - bound)

    def hidden_activations(self, x) -> torch.Tensor:
        """``s(W1 x + b1)``: ``(..., hidden_features)`` for ``x`` of ``(..., in_features)``."""
        x = as_module_input(x, self, self.in_features)
        return _ACTIVATIONS[self.activation](self.hidden(x))

    def forward(self, x) -> torch.Tensor:
        """``W2 s(W1 x + b1) + b2``: shape ``(..., out_features)``."""
        return self.readout(self.hidden_activations(x))

    def contributions(self, x) -> torch.Tensor:
        """Each hidden unit's signed share ``W2[o, j] s(w_j . x + b1_j)`` of each output.

        Returns ``(..., out_features, hidden_features)`` for ``x`` of ``(..., in_features)``;
        summing over the last axis and adding ``readout.bias`` gives ``self(x)``.
        The same layout as :meth:`kernelnotes.YatLayer.contributions`.
        """
        h = self.hidden_activations(x)
        return h[..., None, :] * self.readout.weight

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}"
