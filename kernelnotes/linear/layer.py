"""The multi-head layer :class:`LinearAttention` around :func:`linear_attention`."""

from __future__ import annotations

import torch
from torch import nn

from .._validation import (
    as_module_input,
    check_bool,
    check_min_dims,
    check_positive,
    check_positive_int,
)
from .attention import check_backend, linear_attention
from .feature_maps import FavorFeatures, resolve_feature_map

__all__ = ["LinearAttention"]


class LinearAttention(nn.Module):
    """Multi-head linear attention layer: projections around :func:`linear_attention`.

    A causal layer is a recurrent network: :meth:`forward` with ``return_state=True``
    returns the per-head state, and ``state=`` continues from it, so a prompt can be
    prefilled and the continuation decoded one token at a time at constant cost per token.

    Parameters
    ----------
    embed_dim : int
        Model width; split evenly over ``num_heads``.
    num_heads : int
        Number of heads.
    feature_map, causal, eps, backend
        As in :func:`linear_attention`. A :class:`FavorFeatures` feature map (with
        ``dim = embed_dim // num_heads``) becomes a submodule, so it moves with the layer.
    bias : bool
        Whether the four projections have biases.
    device, dtype
        Of the projections' parameters.
    """

    def __init__(self, embed_dim: int, num_heads: int, *, feature_map="elu+1",
                 causal: bool = False, eps=1e-6, backend: str = "auto", bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        embed_dim = check_positive_int(embed_dim, "embed_dim")
        num_heads = check_positive_int(num_heads, "num_heads")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        check_backend(backend)
        resolve_feature_map(feature_map)
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        if isinstance(feature_map, FavorFeatures) and feature_map.dim != self.head_dim:
            raise ValueError(f"feature_map has dim {feature_map.dim}, expected the head "
                             f"dimension {self.head_dim}")
        self.feature_map = feature_map
        self.causal = check_bool(causal, "causal")
        self.eps = check_positive(eps, "eps")
        self.backend = backend
        factory = {"device": device, "dtype": dtype}
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"causal={self.causal}, backend={self.backend!r}")

    def _check_input(self, x, name: str) -> torch.Tensor:
        """``x`` as a tensor ``(batch, seq, embed_dim)`` of the projections' dtype and device."""
        x = as_module_input(x, self, self.embed_dim, name)
        check_min_dims(x, name, 2, f"(batch, seq, {self.embed_dim})")
        return x

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(-3, -2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, *,
                state=None, return_state: bool = False):
        """Attend from ``x`` ``(batch, L, embed_dim)``; keys and values come from ``context``
        ``(batch, S, embed_dim)`` when given (cross-attention), else from ``x``.

        ``state`` is the ``(S, z)`` a previous call returned (per head: ``(batch, heads, m,
        head_dim)`` and ``(batch, heads, m)``); with ``return_state=True`` the output comes
        as ``(y, state)``.
        """
        x = self._check_input(x, "x")
        source = x if context is None else self._check_input(context, "context")
        out, new_state = linear_attention(
            self._heads(self.q_proj(x)), self._heads(self.k_proj(source)),
            self._heads(self.v_proj(source)), feature_map=self.feature_map,
            causal=self.causal, eps=self.eps, backend=self.backend, initial_state=state,
            output_final_state=True)
        y = self.out_proj(out.transpose(-3, -2).flatten(-2))
        return (y, new_state) if return_state else y
