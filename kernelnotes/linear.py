"""Linear attention: Nadaraya-Watson with a kernel that factors, ``K(q, k) = phi(q) . phi(k)``.

Softmax attention normalises ``exp(q . k)`` over all keys, which costs ``O(L S d)``. When the
kernel is an inner product of feature maps the sums reassociate::

    out_i = sum_j phi(q_i).phi(k_j) v_j / sum_j phi(q_i).phi(k_j)
          = phi(q_i)^T (sum_j phi(k_j) v_j^T) / phi(q_i)^T (sum_j phi(k_j))

and the two bracketed sums, ``S`` (``dk x dv``) and ``z`` (``dk``), are shared by every query:
the cost drops to ``O((L + S) dk dv)`` (Katharopoulos et al., 2020). With a causal mask the
sums run over ``j <= i``, so ``S`` and ``z`` become the state of a recurrent network.

:func:`linear_attention` offers several backends that compute the same thing:

``"quadratic"``
    the explicit ``(phi(Q) phi(K)^T) V`` with its row sums, masked when causal. The reference.
``"recurrent"``
    a loop over time carrying ``S_t`` and ``z_t``: the RNN reading.
``"torch"``
    the reassociated form; causal attention by chunks (quadratic inside a chunk, the carried
    state between chunks), with memory ``O(seq * dim)``.
``"triton"``
    fused GPU kernels (:mod:`kernelnotes.linear_triton`), state kept on chip.
``"auto"``
    ``"triton"`` for CUDA tensors when Triton is installed, else ``"torch"``.

Every backend computes in float32 (float64 for float64 inputs), whatever the input dtype,
and returns the input dtype: sums over long float16 sequences do not overflow and the
``elu + 1`` features of bfloat16 inputs do not round to zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import broadcast_batch, check_positive
from .attention import _qkv

__all__ = [
    "BACKENDS",
    "FEATURE_MAPS",
    "FavorFeatures",
    "LinearAttention",
    "elu_plus_one",
    "linear_attention",
]

BACKENDS = ("auto", "torch", "triton", "quadratic", "recurrent")

#: Smallest chunk of the chunked causal torch backend (the chunk grows with the head dims
#: so that the per-chunk states never hold more than ``seq * max(dk, dv)`` numbers).
CHUNK = 64


def elu_plus_one(x: torch.Tensor) -> torch.Tensor:
    """``elu(x) + 1``, the feature map of Katharopoulos et al. (2020), computed in float32.

    Written as ``x + 1`` for ``x > 0`` and ``exp(x)`` otherwise: the textbook
    ``1 + (exp(x) - 1)`` cancels to exactly 0 in low precision (in bfloat16 once x < -6,
    in float32 once x < -17), leaving the attention denominator with only ``eps``.
    """
    x = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    # clamp: the unused exp branch must not overflow, or its zero gradient becomes 0 * inf
    return torch.where(x > 0, x + 1, torch.exp(x.clamp(max=0)))


FEATURE_MAPS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "elu+1": elu_plus_one,
    "relu": torch.relu,
    "identity": lambda x: x,
}


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
    """

    projection: torch.Tensor

    def __init__(self, dim: int, num_features: int, *, orthogonal: bool = True,
                 generator: torch.Generator | None = None, device=None):
        super().__init__()
        for value, name in ((dim, "dim"), (num_features, "num_features")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.dim = dim
        self.num_features = num_features
        self.orthogonal = bool(orthogonal)
        self.register_buffer("projection",
                             torch.empty(num_features, dim, dtype=torch.float32, device=device))
        self.redraw(generator)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_features={self.num_features}, orthogonal={self.orthogonal}"

    @torch.no_grad()
    def redraw(self, generator: torch.Generator | None = None) -> FavorFeatures:
        """Draw a new projection ``W`` in place (keeping its device and dtype); returns self."""
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

    def forward(self, x: torch.Tensor, is_query: bool | None = None) -> torch.Tensor:
        """Features ``(..., n, num_features)`` of ``x`` of shape ``(..., n, dim)``.

        ``is_query`` picks the stabiliser, a constant subtracted from the exponent before
        ``exp`` so nothing overflows: per row for queries (it cancels between numerator and
        denominator of each output), one per sequence for keys (it scales every key alike).
        ``None`` applies none: the plain unbiased estimator. Both constants cancel exactly
        in attention except through ``eps``; for causal attention the key constant is taken
        over the whole sequence, so later keys can reach earlier outputs only that way.
        """
        if x.shape[-1] != self.dim:
            raise ValueError(f"feature_map: FavorFeatures(dim={self.dim}) got inputs whose "
                             f"last dimension is {x.shape[-1]}")
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        x = x.to(dtype)
        logits = x @ self.projection.to(dtype).T - (x * x).sum(-1, keepdim=True) / 2
        if is_query is True:
            logits = logits - logits.amax(-1, keepdim=True).detach()
        elif is_query is False:
            logits = logits - logits.amax((-2, -1), keepdim=True).detach()
        return torch.exp(logits) / math.sqrt(self.num_features)


def _resolve_feature_map(feature_map) -> tuple[str | None, Callable]:
    """``(name, phi)`` where ``phi(x, is_query)`` returns features in the compute dtype.

    ``name`` is set for the maps the Triton kernel applies itself.
    """
    if isinstance(feature_map, str):
        if feature_map not in FEATURE_MAPS:
            raise ValueError(f"feature_map must be one of {sorted(FEATURE_MAPS)}, a "
                             f"FavorFeatures or a callable, got {feature_map!r}")
        fn = FEATURE_MAPS[feature_map]
        return feature_map, lambda x, is_query: fn(x)
    if isinstance(feature_map, FavorFeatures):
        return None, feature_map
    if callable(feature_map):
        return None, lambda x, is_query: feature_map(x)
    raise TypeError(f"feature_map must be a string, a FavorFeatures or a callable, "
                    f"got {type(feature_map).__name__}")


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _features(phi: Callable, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Apply ``phi`` to queries and keys in the compute dtype and check what comes back."""
    dtype = _compute_dtype(q.dtype)
    fq = phi(q.to(dtype), True)
    fk = phi(k.to(dtype), False)
    for f, x, name in ((fq, q, "q"), (fk, k, "k")):
        if not isinstance(f, torch.Tensor) or f.shape[:-1] != x.shape[:-1]:
            shape = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
            raise ValueError(f"feature_map must map {name} of shape {tuple(x.shape)} to "
                             f"(..., {x.shape[-2]}, features), got {shape}")
    if fq.shape[-1] != fk.shape[-1]:
        raise ValueError(f"feature_map gave {fq.shape[-1]} features for q but "
                         f"{fk.shape[-1]} for k")
    return fq.to(dtype), fk.to(dtype)


def _quadratic(fq, fk, v, causal: bool, eps: float) -> torch.Tensor:
    weights = fq @ fk.mT
    if causal:
        weights = weights.tril()
    return (weights @ v) / (weights.sum(-1, keepdim=True) + eps)


def _recurrent(fq, fk, v, causal: bool, eps: float) -> torch.Tensor:
    state = fk.new_zeros(*fk.shape[:-2], fk.shape[-1], v.shape[-1])
    norm = fk.new_zeros(*fk.shape[:-2], fk.shape[-1])
    outputs = []
    for t in range(fk.shape[-2]):
        state = state + fk[..., t, :, None] * v[..., t, None, :]
        norm = norm + fk[..., t, :]
        if causal:
            outputs.append(_read_out(fq[..., t, :], state, norm, eps))
    if not causal:  # every query reads the final state
        outputs = [_read_out(fq[..., t, :], state, norm, eps) for t in range(fq.shape[-2])]
    return torch.stack(outputs, dim=-2)


def _read_out(fq_t, state, norm, eps: float) -> torch.Tensor:
    num = (fq_t[..., None, :] @ state).squeeze(-2)
    return num / ((fq_t * norm).sum(-1, keepdim=True) + eps)


def _exclusive_cumsum(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Cumulative sum over ``dim`` shifted by one: entry n holds the sum of entries < n."""
    total = x.cumsum(dim)
    return torch.cat([torch.zeros_like(total.narrow(dim, 0, 1)),
                      total.narrow(dim, 0, x.shape[dim] - 1)], dim=dim)


def _reassociated(fq, fk, v, causal: bool, eps: float) -> torch.Tensor:
    if not causal:
        state = fk.mT @ v
        norm = fk.sum(-2)
        return (fq @ state) / ((fq @ norm[..., None]) + eps)
    return _chunked_causal(fq, fk, v, eps)


def _chunked_causal(fq, fk, v, eps: float) -> torch.Tensor:
    """Causal linear attention by chunks, every chunk at once.

    Inside a chunk: the masked quadratic form. Across chunks: each chunk's summed state
    ``phi(K_c)^T V_c``, an exclusive prefix sum over chunks, read out by the chunk's
    queries. With chunk length ``c >= min(dk, dv)`` the stacked states hold
    ``(seq / c) dk dv <= seq max(dk, dv)`` numbers and the intra-chunk scores ``seq c``:
    memory linear in the sequence, never a ``seq x dk x dv`` tensor.
    """
    seq = fq.shape[-2]
    chunk = max(CHUNK, min(fq.shape[-1], v.shape[-1]))
    chunks = -(-seq // chunk)
    pad = chunks * chunk - seq

    def split(x):  # (..., seq, d) -> (..., chunks, chunk, d), zero rows as padding
        return F.pad(x, (0, 0, 0, pad)).unflatten(-2, (chunks, chunk))

    fq, fk, v = split(fq), split(fk), split(v)
    scores = (fq @ fk.mT).tril()  # (..., chunks, chunk, chunk)
    state = _exclusive_cumsum(fk.mT @ v, dim=-3)  # (..., chunks, dk, dv): earlier chunks
    norm = _exclusive_cumsum(fk.sum(-2), dim=-2)  # (..., chunks, dk)
    num = scores @ v + fq @ state
    den = scores.sum(-1, keepdim=True) + fq @ norm[..., None] + eps
    return (num / den).flatten(-3, -2)[..., :seq, :]


_TORCH_BACKENDS = {"quadratic": _quadratic, "recurrent": _recurrent, "torch": _reassociated}


class _TritonForward(torch.autograd.Function):
    """Triton forward; backward recomputes with the torch backend and differentiates it."""

    @staticmethod
    def forward(ctx, q, k, v, feature: str, causal: bool, eps: float):
        from .linear_triton import linear_attention_triton

        ctx.save_for_backward(q, k, v)
        ctx.options = (feature, causal, eps)
        return linear_attention_triton(q, k, v, feature=feature, causal=causal, eps=eps)

    @staticmethod
    def backward(ctx, grad_out):
        feature, causal, eps = ctx.options
        inputs = [x.detach().requires_grad_(need)
                  for x, need in zip(ctx.saved_tensors, ctx.needs_input_grad[:3], strict=True)]
        with torch.enable_grad():
            phi = FEATURE_MAPS[feature]
            out = _reassociated(phi(inputs[0].to(_compute_dtype(inputs[0].dtype))),
                                phi(inputs[1].to(_compute_dtype(inputs[1].dtype))),
                                inputs[2].to(_compute_dtype(inputs[2].dtype)), causal, eps)
            wanted = [x for x in inputs if x.requires_grad]
            grads = iter(torch.autograd.grad(out.to(grad_out.dtype), wanted, grad_out))
        return (*(next(grads) if x.requires_grad else None for x in inputs), None, None, None)


_TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _triton_problem(q: torch.Tensor, features: int) -> Exception | None:
    """The error the Triton backend raises for these inputs, or None if it can run."""
    from . import linear_triton as lt

    def no(error, why):
        return error(f"backend='triton' cannot run here: {why}")

    if not lt.HAS_TRITON:
        return no(ImportError, "the triton package is not installed")
    if q.device.type == "cuda":
        if lt.INTERPRET:
            return no(ValueError, "TRITON_INTERPRET=1 runs Triton on CPU tensors only, "
                                  "got CUDA tensors")
    elif not (q.device.type == "cpu" and lt.INTERPRET):
        return no(ValueError, f"it needs CUDA tensors (or CPU tensors with TRITON_INTERPRET=1 "
                              f"set before triton is imported), got {q.device.type} tensors")
    if q.dtype not in _TRITON_DTYPES:
        return no(TypeError, f"it supports float32, float16 and bfloat16, got {q.dtype}")
    if lt.INTERPRET and q.dtype == torch.bfloat16:
        return no(TypeError, "the Triton interpreter rounds bfloat16 inexactly; "
                             "use float16 or float32 on CPU")
    if features > lt.MAX_FEATURE_DIM:
        return no(ValueError, f"it keeps at most {lt.MAX_FEATURE_DIM} features on chip, "
                              f"got {features}")
    return None


def linear_attention(q, k, v, *, feature_map="elu+1", causal: bool = False, eps=1e-6,
                     backend: str = "auto") -> torch.Tensor:
    """Linear attention ``phi(Q) (phi(K)^T V)``, normalised row by row.

    ``out_i = sum_j phi(q_i).phi(k_j) v_j / (sum_j phi(q_i).phi(k_j) + eps)``, the sums over
    ``j <= i`` when ``causal``. Shapes follow
    :func:`torch.nn.functional.scaled_dot_product_attention`, but there is no ``scale``:
    the feature map sees ``q`` and ``k`` as given (scale them first if you want to).

    Dtypes: float16 and bfloat16 inputs are computed in float32 (features, sums and
    products) and the output is rounded back; float64 stays float64.
    Gradients flow through every backend. Inputs and output are on the inputs' device.

    Parameters
    ----------
    q : Tensor ``(batch, heads, L, dk)``
        Queries; any leading dims that broadcast against those of ``k`` and ``v``.
    k : Tensor ``(batch, heads, S, dk)``
        Keys.
    v : Tensor ``(batch, heads, S, dv)``
        Values; ``dv`` may differ from ``dk``.
    feature_map : str, FavorFeatures or callable
        ``"elu+1"`` (default), ``"relu"``, ``"identity"`` (inputs are already non-negative
        features), a :class:`FavorFeatures` (positive random features for ``exp(q . k)``),
        or any callable mapping ``(..., n, dk)`` to non-negative ``(..., n, m)``; it is
        called on float32 (float64) inputs. Different maps are different kernels.
    causal : bool
        Query ``i`` sees keys ``0..i`` only. Needs ``L == S``: for ``L != S``
        ``scaled_dot_product_attention`` aligns the mask to the top left (query ``i`` sees
        keys ``0..i`` of ``S``), which is rarely what a decoder wants; here it is an error.
    eps : float
        Added to each denominator, so a row whose weights are all zero returns 0, not NaN.
    backend : str
        ``"auto"``, ``"torch"``, ``"triton"``, ``"quadratic"`` or ``"recurrent"`` (module
        docstring). ``"triton"`` needs CUDA tensors in float32, float16 or bfloat16 and at
        most 256 features; on a GPU its float16/bfloat16 products use TF32 tensor cores.
        Its forward is paired with a backward that recomputes the output with the torch
        backend and differentiates it.

    Returns
    -------
    Tensor ``(batch, heads, L, dv)`` in the dtype of the inputs.

    Raises
    ------
    ValueError
        Shapes that do not match or broadcast, ``causal`` with ``L != S``, a non-positive
        ``eps``, an unknown backend or feature map, or a feature map whose output has the
        wrong shape; ``backend="triton"`` on a device or size it cannot run.
    TypeError
        Non-floating or mixed dtypes; ``backend="triton"`` with a dtype it does not support.
    ImportError
        ``backend="triton"`` without the triton package.
    """
    q, k, v = _qkv(q, k, v)
    eps = check_positive(eps, "eps")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    name, phi = _resolve_feature_map(feature_map)
    if causal and q.shape[-2] != k.shape[-2]:
        raise ValueError(f"causal=True needs as many queries as keys, got q with "
                         f"{q.shape[-2]} and k with {k.shape[-2]} positions")
    lead = broadcast_batch({"q": q.shape, "k": k.shape, "v": v.shape}, trailing=2)
    q, k, v = (x.expand(*lead, *x.shape[-2:]) for x in (q, k, v))
    if q.shape[-2] == 0 or k.shape[-2] == 0:  # no queries, or no keys: every sum is 0
        # (a real tensor, not an expanded view, so the caller may write to it in place)
        zero = v.sum(-2, keepdim=True) * 0  # keeps the graph: gradients are zeros, not None
        return zero.expand(*lead, q.shape[-2], v.shape[-1]).contiguous()

    fq = fk = None
    if name is None:  # the features are needed by every backend, Triton included
        fq, fk = _features(phi, q, k)
    width = q.shape[-1] if fq is None else fq.shape[-1]
    if backend == "auto":
        backend = "triton" if q.is_cuda and _triton_problem(q, width) is None else "torch"
    if backend == "triton":
        problem = _triton_problem(q, width)
        if problem is not None:
            raise problem
        if fq is None:  # the kernel applies the named feature map itself
            return _TritonForward.apply(q, k, v, name, bool(causal), eps)
        return _TritonForward.apply(fq, fk, v, "identity", bool(causal), eps)

    if fq is None:
        fq, fk = _features(phi, q, k)
    out = _TORCH_BACKENDS[backend](fq, fk, v.to(fq.dtype), bool(causal), eps)
    return out.to(v.dtype)


class LinearAttention(nn.Module):
    """Multi-head linear attention layer: projections around :func:`linear_attention`.

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
    """

    def __init__(self, embed_dim: int, num_heads: int, *, feature_map="elu+1",
                 causal: bool = False, eps=1e-6, backend: str = "auto", bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        for value, name in ((embed_dim, "embed_dim"), (num_heads, "num_heads")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        _resolve_feature_map(feature_map)
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        if isinstance(feature_map, FavorFeatures) and feature_map.dim != self.head_dim:
            raise ValueError(f"feature_map has dim {feature_map.dim}, expected the head "
                             f"dimension {self.head_dim}")
        self.feature_map = feature_map
        self.causal = bool(causal)
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

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(-3, -2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` is ``(batch, L, embed_dim)``; keys and values come from ``context``
        ``(batch, S, embed_dim)`` when given (cross-attention), else from ``x``."""
        if x.dim() < 2 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"x must have shape (batch, seq, {self.embed_dim}), "
                             f"got {tuple(x.shape)}")
        source = x if context is None else context
        if source.dim() < 2 or source.shape[-1] != self.embed_dim:
            raise ValueError(f"context must have shape (batch, seq, {self.embed_dim}), "
                             f"got {tuple(source.shape)}")
        out = linear_attention(self._heads(self.q_proj(x)), self._heads(self.k_proj(source)),
                               self._heads(self.v_proj(source)), feature_map=self.feature_map,
                               causal=self.causal, eps=self.eps, backend=self.backend)
        return self.out_proj(out.transpose(-3, -2).flatten(-2))
