"""The public entry :func:`linear_attention`: validation once, then one algorithm."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch.autograd.function import once_differentiable

from .._validation import as_qkv, as_tensor, broadcast_batch, check_bool, check_positive
from . import triton as lt
from .chunked import chunked, streamed
from .feature_maps import ElementwiseMap, FavorFeatures, compute_dtype, resolve_feature_map
from .reference import quadratic, recurrent

__all__ = ["BACKENDS", "check_backend", "linear_attention"]

BACKENDS = ("auto", "torch", "triton", "quadratic", "recurrent")

_TORCH_ALGORITHMS = {"quadratic": quadratic, "recurrent": recurrent, "torch": chunked}


def check_backend(backend) -> str:
    """``backend`` if it names one of :data:`BACKENDS`: a TypeError for a non-string, a
    ValueError for an unknown name."""
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a string, one of {BACKENDS}, got "
                        f"{type(backend).__name__}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend


def _check_state(state, lead: torch.Size, width: int, dv: int, like: torch.Tensor):
    """``initial_state`` as ``(S0, z0)`` expanded to ``lead`` in the compute dtype."""
    if not (isinstance(state, (tuple, list)) and len(state) == 2):
        raise TypeError(f"initial_state must be a pair (S, z) of tensors, "
                        f"got {type(state).__name__}")
    dtype = compute_dtype(like.dtype)
    checked = []
    for x, name, trailing in ((state[0], "initial_state[0] (S)", (width, dv)),
                              (state[1], "initial_state[1] (z)", (width,))):
        x = as_tensor(x, name, like=like)
        if tuple(x.shape[x.dim() - len(trailing):]) != trailing or x.dim() < len(trailing):
            raise ValueError(f"{name} must have shape (..., {', '.join(map(str, trailing))}), "
                             f"got {tuple(x.shape)}")
        try:
            x = x.expand(*lead, *trailing)
        except RuntimeError:
            raise ValueError(f"{name} of shape {tuple(x.shape)} does not broadcast to the "
                             f"batch dimensions {tuple(lead)} of q, k and v") from None
        checked.append(x.to(dtype))
    return tuple(checked)


class _TritonAttention(torch.autograd.Function):
    """The Triton kernels, forward and backward."""

    @staticmethod
    def forward(ctx, q, k, v, S0, z0, feature: str, causal: bool, eps: float, cu_seqlens):
        state = None if S0 is None else (S0, z0)
        out, (S, z) = lt.linear_attention_triton(q, k, v, feature=feature, causal=causal,
                                                 eps=eps, initial_state=state,
                                                 cu_seqlens=cu_seqlens)
        ctx.save_for_backward(q, k, v, S0, z0, out)
        ctx.options = {"feature": feature, "causal": causal, "eps": eps,
                       "cu_seqlens": cu_seqlens}
        return out, S, z

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_S, grad_z):
        q, k, v, S0, z0, out = ctx.saved_tensors
        state = None if S0 is None else (S0, z0)
        dq, dk, dv, (dS0, dz0) = lt.linear_attention_triton_backward(
            q, k, v, out, grad_out, (grad_S, grad_z), initial_state=state, **ctx.options)
        if S0 is None:
            dS0 = dz0 = None
        return dq, dk, dv, dS0, dz0, None, None, None, None


_TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _triton_problem(q: torch.Tensor, features: int) -> Exception | None:
    """The error the Triton backend raises for these inputs, or None if it can run."""

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
                     backend: str = "auto", initial_state=None, output_final_state: bool = False,
                     cu_seqlens=None):
    """Linear attention ``phi(Q) (phi(K)^T V)``, normalised row by row.

    ``out_i = sum_j phi(q_i).phi(k_j) v_j / (sum_j phi(q_i).phi(k_j) + eps)``, the sums over
    ``j <= i`` when ``causal``. Shapes follow
    :func:`torch.nn.functional.scaled_dot_product_attention`, but there is no ``scale``:
    the feature map sees ``q`` and ``k`` as given (scale them first if you want to).

    The sums over keys are a state, ``S = sum_j phi(k_j) v_j^T`` and ``z = sum_j phi(k_j)``:
    ``output_final_state=True`` returns it, and ``initial_state`` continues from it, so a
    sequence may be fed in pieces (a prompt, then one token at a time) with the outputs and
    the final state of one pass.

    Dtypes: float16 and bfloat16 inputs are computed in float32 (features, sums and
    products; autocast is switched off inside) and the output is rounded back; float64
    stays float64. Gradients flow through every backend, to the initial state as well.

    Parameters
    ----------
    q : Tensor ``(batch, heads, L, dk)``
        Queries; any leading dims that broadcast against those of ``k`` and ``v``.
    k : Tensor ``(batch, heads, S, dk)``
        Keys.
    v : Tensor ``(batch, heads, S, dv)``
        Values; ``dv`` may differ from ``dk``.
    feature_map : str, FeatureMap or callable
        ``"elu+1"`` (default), ``"relu"``, ``"identity"`` (inputs are already non-negative
        features), a :class:`FavorFeatures` (positive random features for ``exp(q . k)``),
        anything following :class:`FeatureMap`, or any callable mapping ``(..., n, dk)`` to
        non-negative ``(..., n, m)``; it is called on float32 (float64) inputs. Different
        maps are different kernels.
    causal : bool
        Query ``i`` sees keys ``0..i`` only (and the initial state). Needs ``L == S``: for
        ``L != S`` ``scaled_dot_product_attention`` aligns the mask to the top left, which is
        rarely what a decoder wants; here it is an error.
    eps : float
        Added to each denominator, so a row whose weights are all zero returns 0, not NaN.
        (A feature map that scales its key features by a constant scales ``eps`` alike.)
    backend : str
        ``"quadratic"`` (the explicit masked form: the reference), ``"recurrent"`` (a loop
        over time carrying the state: the RNN reading), ``"torch"`` (reassociated; causal by
        chunks, memory linear in the sequence), ``"triton"`` (fused kernels forward and
        backward, state on chip; CUDA tensors in float32, float16 or bfloat16 and at most
        256 features; its float16/bfloat16 products use TF32 tensor cores) or ``"auto"``
        (``"triton"`` for CUDA tensors it can run, else ``"torch"``).
    initial_state : tuple of Tensor, optional
        ``(S0, z0)`` of shapes ``(..., m, dv)`` and ``(..., m)`` (``m`` the number of
        features), broadcasting against the batch dims: the state of the keys before these.
        Causal outputs read it plus their own causal sums; non-causal outputs attend over
        the earlier keys as well.
    output_final_state : bool
        Return the state after these keys as well.
    cu_seqlens : Tensor, optional
        Variable-length sequences packed into a batch of one (FlashAttention's convention):
        ``q``, ``k`` and ``v`` are ``(1, heads, T, d)``, and the integer tensor
        ``cu_seqlens`` of ``N + 1`` entries ``0 = c_0 <= ... <= c_N = T`` says that sequence
        ``n`` holds rows ``c_n`` to ``c_{n+1} - 1``. Each sequence is attended to alone;
        the states are per sequence, ``(N, heads, m, dv)`` and ``(N, heads, m)``.

    Returns
    -------
    Tensor ``(batch, heads, L, dv)`` in the dtype of the inputs, or, with
    ``output_final_state``, ``(out, (S, z))`` with ``S = S0 + sum_j phi(k_j) v_j^T`` of shape
    ``(batch, heads, m, dv)`` and ``z = z0 + sum_j phi(k_j)`` of shape ``(batch, heads, m)``
    in float32 (float64 for float64 inputs).

    Raises
    ------
    ValueError
        Shapes that do not match or broadcast, ``causal`` with ``L != S``, a non-positive
        ``eps``, an unknown backend or feature map, a feature map whose output has the
        wrong shape, an initial state of the wrong shape, ``cu_seqlens`` that do not cut
        the sequence; ``backend="triton"`` on a device or size it cannot run.
    TypeError
        Non-floating or mixed dtypes, ``causal`` or ``output_final_state`` that is not a
        bool, a backend that is not a string, an initial state that is not a pair of tensors,
        ``cu_seqlens`` that are not an integer tensor;
        ``backend="triton"`` with a dtype it does not support.
    ImportError
        ``backend="triton"`` without the triton package.
    """
    q, k, v = as_qkv(q, k, v)
    lead = broadcast_batch({"q": q.shape, "k": k.shape, "v": v.shape}, trailing=2)
    causal = check_bool(causal, "causal")
    output_final_state = check_bool(output_final_state, "output_final_state")
    eps = check_positive(eps, "eps")
    check_backend(backend)
    name, phi = resolve_feature_map(feature_map)
    if causal and q.shape[-2] != k.shape[-2]:
        raise ValueError(f"causal=True needs as many queries as keys, got q with "
                         f"{q.shape[-2]} and k with {k.shape[-2]} positions")
    q, k, v = (x.expand(*lead, *x.shape[-2:]) for x in (q, k, v))
    starts = None if cu_seqlens is None else _check_cu_seqlens(cu_seqlens, q, k)
    # the promised float32 arithmetic: an enclosing autocast would round the matmuls
    with torch.autocast(q.device.type, enabled=False):
        out, state = _attend(q, k, v, name, phi, causal, eps, backend, initial_state, starts)
    return (out, state) if output_final_state else out


def _check_cu_seqlens(cu_seqlens, q: torch.Tensor, k: torch.Tensor):
    """``(cu_seqlens on q's device, its entries as a list)``, checked against the inputs."""
    if not isinstance(cu_seqlens, torch.Tensor) or cu_seqlens.is_floating_point() \
            or cu_seqlens.is_complex() or cu_seqlens.dtype == torch.bool:
        raise TypeError(f"cu_seqlens must be an integer tensor, got "
                        f"{getattr(cu_seqlens, 'dtype', type(cu_seqlens).__name__)}")
    if q.dim() != 4 or q.shape[0] != 1 or q.shape[-2] != k.shape[-2]:
        raise ValueError(f"cu_seqlens needs q, k and v packed as (1, heads, T, d) with as "
                         f"many queries as keys, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    bounds = cu_seqlens.tolist()
    if cu_seqlens.dim() != 1 or len(bounds) < 2 or bounds[0] != 0 \
            or bounds[-1] != q.shape[-2] or any(b < a for a, b in pairwise(bounds)):
        raise ValueError(f"cu_seqlens must be 1-d, rise from 0 to the packed length "
                         f"{q.shape[-2]} and never fall, got {bounds}")
    return cu_seqlens.to(q.device), bounds


def _feature(phi, x: torch.Tensor, is_query: bool) -> torch.Tensor:
    """``phi(x)`` in the compute dtype, checked: as many rows as ``x``."""
    dtype = compute_dtype(x.dtype)
    f = phi(x.to(dtype), is_query)
    if not isinstance(f, torch.Tensor) or f.shape[:-1] != x.shape[:-1]:
        shape = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
        raise ValueError(f"feature_map must map {'q' if is_query else 'k'} of shape "
                         f"{tuple(x.shape)} to (..., {x.shape[-2]}, features), got {shape}")
    return f.to(dtype)


def _features(phi, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply ``phi`` to queries and keys in the compute dtype and check what comes back."""
    fq, fk = _feature(phi, q, True), _feature(phi, k, False)
    if fq.shape[-1] != fk.shape[-1]:
        raise ValueError(f"feature_map gave {fq.shape[-1]} features for q but "
                         f"{fk.shape[-1]} for k")
    return fq, fk


def _attend(q, k, v, name, phi, causal: bool, eps: float, backend: str, initial_state,
            starts):
    """Validated, broadcast inputs -> ``(out, (S, z))``; ``starts`` is None or the checked
    ``(cu_seqlens, its list)``."""
    dtype = compute_dtype(q.dtype)
    eps = eps * phi.key_scale(dtype)
    fq = fk = None
    if name is None and not (isinstance(phi, _ROW_MAPS) and backend != "triton"
                             and not q.is_cuda):
        # Triton takes these features whole; an unknown map is applied to the whole inputs
        fq, fk = _features(phi, q, k)
    if name is not None:
        width = q.shape[-1]
    elif fq is not None:
        width = fq.shape[-1]
    else:  # a row map's width from one row (the torch backend applies it block by block)
        width = _features(phi, q[..., :1, :], k[..., :1, :])[0].shape[-1]
    state_lead = q.shape[:-2] if starts is None else (len(starts[1]) - 1, *q.shape[1:-2])
    state = (None if initial_state is None
             else _check_state(initial_state, state_lead, width, v.shape[-1], q))
    empty = min(q.shape[-2], k.shape[-2], v.shape[-1], width, q.shape[:-2].numel()) == 0
    if backend == "auto":
        backend = "triton" if q.is_cuda and _triton_problem(q, width) is None else "torch"
    if backend == "triton":
        problem = _triton_problem(q, width)
        if problem is not None:
            raise problem
        if not empty:
            S0, z0 = (None, None) if state is None else state
            eps = float(eps)  # the kernel takes a number (FAVOR+ scales eps by a tensor)
            cu = None if starts is None else starts[0]
            if fq is None:  # the kernel applies the named feature map itself
                out, S, z = _TritonAttention.apply(q, k, v, S0, z0, name, causal, eps, cu)
            else:
                out, S, z = _TritonAttention.apply(fq, fk, v, S0, z0, "identity", causal, eps,
                                                   cu)
            return out, (S.to(dtype), z.to(dtype))
    bounds = None if starts is None else starts[1]
    if backend == "torch" and not empty and _inference(phi, q, k, v, state):
        return _stream(phi, fq, fk, q, k, v, causal, eps, state, bounds, width)
    if fq is None:
        fq, fk = _features(phi, q, k)
    algorithm = None if empty else _TORCH_ALGORITHMS[backend]
    out, S, z = _run(algorithm, fq, fk, v.to(dtype), causal, eps, state, bounds)
    return out.to(v.dtype), (S, z)


#: Feature maps that act on each row alone, so that they may be applied block by block.
_ROW_MAPS = (ElementwiseMap, FavorFeatures)


def _inference(phi, q, k, v, state) -> bool:
    """Whether the call records no graph, so :func:`streamed` may compute it in place.

    Eager only (``torch.compile`` traces the autograd algorithm, which it can fuse), and
    with grad enabled only if no input requires grad and the map is one of ours (a callable
    might hold parameters that do).
    """
    if torch.compiler.is_compiling():
        return False
    if not torch.is_grad_enabled():
        return True
    inputs = (q, k, v) if state is None else (q, k, v, *state)
    return isinstance(phi, _ROW_MAPS) and not any(x.requires_grad for x in inputs)


def _stream(phi, fq, fk, q, k, v, causal: bool, eps, state, bounds, width: int):
    """:func:`streamed` on the whole batch or sequence by sequence, into one output.

    ``fq`` and ``fk`` are None for a map that acts row by row (it is applied block by
    block), else the features of the whole inputs, which the blocks then read; ``width``
    is the number of features.
    """
    if state is None:
        lead = q.shape[:-2] if bounds is None else (len(bounds) - 1, *q.shape[1:-2])
        dtype = compute_dtype(q.dtype)
        state = (q.new_zeros(*lead, width, v.shape[-1], dtype=dtype),
                 q.new_zeros(*lead, width, dtype=dtype))
    else:  # updated in place: a copy, contiguous (the checked state may be a broadcast view)
        state = tuple(x.clone(memory_format=torch.contiguous_format) for x in state)
    if fq is not None:
        q, k = fq, fk

        def features(x, is_query):
            return x
    else:
        def features(x, is_query):
            return _feature(phi, x, is_query)
    with torch.no_grad():
        out = torch.empty(*q.shape[:-1], v.shape[-1], dtype=v.dtype, device=v.device)
        if bounds is None:
            streamed(features, q, k, v, causal, eps, state, out)
        for n, (first, stop) in enumerate(pairwise(bounds or ())):
            if stop > first:  # an empty sequence's state passes through
                rows = slice(first, stop)
                streamed(features, q[..., rows, :], k[..., rows, :], v[..., rows, :], causal,
                         eps, (state[0][n:n + 1], state[1][n:n + 1]), out[..., rows, :])
    return out, state


def _run(algorithm, fq, fk, v, causal: bool, eps, state, bounds):
    """One algorithm on the whole batch, or sequence by sequence of a packed batch.

    ``algorithm=None`` or an empty sequence takes the explicit form, which needs no chunks
    and keeps the graph (gradients are zeros, not None).
    """
    if bounds is None:
        return (algorithm or quadratic)(fq, fk, v, causal, eps, state)
    pieces = []
    for n, (first, stop) in enumerate(pairwise(bounds)):
        rows = slice(first, stop)
        alone = algorithm if algorithm is not None and stop > first else quadratic
        pieces.append(alone(fq[..., rows, :], fk[..., rows, :], v[..., rows, :], causal, eps,
                            None if state is None else (state[0][n:n + 1], state[1][n:n + 1])))
    outs, S, z = zip(*pieces, strict=True)
    return torch.cat(outs, -2), torch.cat(S), torch.cat(z)
