"""Fused Triton kernels for linear attention (the ``backend="triton"`` of ``linear_attention``).

Import-guarded: without the ``triton`` package :data:`HAS_TRITON` is False and nothing here
can run; :func:`kernelnotes.linear_attention` then falls back to its torch backends. On a
machine without a GPU the kernels run under the Triton interpreter when ``TRITON_INTERPRET=1``
was set before ``triton`` was first imported (the interpreter replaces ``@triton.jit`` at
decoration time).

One kernel covers both cases. A program owns one ``(batch, head)`` pair and one block of
value columns, and keeps the state ``S = S0 + phi(K)^T V`` (``dk x BV``) and the normaliser
``z = z0 + phi(K)^T 1`` in registers, in float32, starting from the carried state ``(S0, z0)``
when there is one and writing the final state at the end:

* non-causal: one pass over the keys builds ``S`` and ``z``, a second pass over the queries
  writes ``phi(q) S / (phi(q) . z + eps)``;
* causal: one pass over chunks of 32 or 64 positions (see :func:`_blocks`). Each chunk adds
  the contribution of the earlier chunks through the carried state, ``phi(Q_c) S``, to its
  own masked quadratic part, ``tril(phi(Q_c) phi(K_c)^T) V_c``, and then folds its keys
  into the state.

Loaded blocks are converted to float32 before any arithmetic (bfloat16 loads are wrong under
the interpreter, and the feature maps must not lose precision). Only plain pointer arithmetic
with masks is used (no block pointers), so the code runs on Triton 3.6 and 3.9 alike.
"""

from __future__ import annotations

import os

import torch

from .feature_maps import FEATURE_IDS

try:  # pragma: no cover - exercised by whichever environment runs the tests
    import triton
    import triton.language as tl

    HAS_TRITON = True
except ImportError:  # pragma: no cover
    triton = None
    tl = None
    HAS_TRITON = False

__all__ = ["HAS_TRITON", "INTERPRET", "MAX_FEATURE_DIM", "linear_attention_triton"]

#: True when the kernels run on CPU tensors through the Triton interpreter. Read once, here,
#: because Triton reads the variable when the kernels below are decorated.
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"

#: Largest feature dimension the kernel keeps on chip (the state is ``dk x BV`` floats).
MAX_FEATURE_DIM = 256

if HAS_TRITON:
    # the ids of the maps the kernel applies itself, from the one registry
    _ELU_PLUS_ONE = tl.constexpr(FEATURE_IDS["elu+1"])
    _RELU = tl.constexpr(FEATURE_IDS["relu"])

    @triton.jit
    def _feature(x, valid, FEATURE: tl.constexpr):
        """Apply the feature map in float32 and zero the padding (phi(0) is 1 for elu+1)."""
        if FEATURE == _ELU_PLUS_ONE:
            # elu(x) + 1 written without the cancellation 1 + (exp(x) - 1)
            x = tl.where(x > 0, x + 1.0, tl.exp(tl.minimum(x, 0.0)))
        elif FEATURE == _RELU:
            x = tl.maximum(x, 0.0)
        return tl.where(valid, x, 0.0)

    @triton.jit
    def _load_features(base, rows, n, stride_t, offs_d, mask_d, FEATURE: tl.constexpr):
        """phi of one block of rows, ``(BT, BD)`` float32; rows past ``n`` and padding are 0.

        Row offsets are int64: a head slice can pass 2**31 elements.
        """
        mask = (rows < n)[:, None] & mask_d[None, :]
        x = tl.load(base + rows.to(tl.int64)[:, None] * stride_t + offs_d[None, :], mask=mask,
                    other=0.0)
        return _feature(x.to(tl.float32), mask, FEATURE)

    @triton.jit
    def _load_keys_values(k_base, v_base, rows, n, skt, svt, offs_d, mask_d, offs_v, mask_v,
                          FEATURE: tl.constexpr):
        """``phi(K_c)^T`` as ``(BD, BT)`` (loaded transposed, so no ``tl.trans``) and ``V_c``
        as ``(BT, BV)``, both float32 and zero outside the sequence."""
        mask_t = rows < n
        mask_k = mask_d[:, None] & mask_t[None, :]
        rows64 = rows.to(tl.int64)
        kt = tl.load(k_base + offs_d[:, None] + rows64[None, :] * skt, mask=mask_k, other=0.0)
        v = tl.load(v_base + rows64[:, None] * svt + offs_v[None, :],
                    mask=mask_t[:, None] & mask_v[None, :], other=0.0)
        return _feature(kt.to(tl.float32), mask_k, FEATURE), v.to(tl.float32)

    @triton.jit
    def _store_rows(base, out, rows, n, stride_t, offs_v, mask_v):
        """Write one ``(BT, BV)`` block of outputs in the output's dtype."""
        tl.store(base + rows.to(tl.int64)[:, None] * stride_t + offs_v[None, :],
                 out.to(base.dtype.element_ty), mask=(rows < n)[:, None] & mask_v[None, :])

    @triton.jit
    def _linear_attention_kernel(
        Q, K, V, O, S0, Z0, SF, ZF, CU,
        sqb, sqh, sqt, skb, skh, skt, svb, svh, svt, sob, soh, sot,
        H, LQ, LK, DK, DV, eps,
        FEATURE: tl.constexpr, CAUSAL: tl.constexpr, HAS_INITIAL: tl.constexpr,
        IS_VARLEN: tl.constexpr, PRECISION: tl.constexpr,
        BT: tl.constexpr, BD: tl.constexpr, BV: tl.constexpr,
    ):
        pid_bh = tl.program_id(0).to(tl.int64)  # (batch or packed sequence) * H + head
        pid_v = tl.program_id(1)
        b = pid_bh // H
        h = pid_bh % H
        if IS_VARLEN:  # sequence b of the packed batch of one: rows CU[b] to CU[b + 1]
            first = tl.load(CU + b).to(tl.int64)
            LQ = (tl.load(CU + b + 1).to(tl.int64) - first).to(tl.int32)
            LK = LQ
            q_base = Q + h * sqh + first * sqt
            k_base = K + h * skh + first * skt
            v_base = V + h * svh + first * svt
            o_base = O + h * soh + first * sot
        else:
            q_base = Q + b * sqb + h * sqh
            k_base = K + b * skb + h * skh
            v_base = V + b * svb + h * svh
            o_base = O + b * sob + h * soh

        offs_t = tl.arange(0, BT)
        offs_d = tl.arange(0, BD)
        offs_v = pid_v * BV + tl.arange(0, BV)
        mask_d = offs_d < DK
        mask_v = offs_v < DV

        # states are contiguous float32, (B*H, DK, DV) and (B*H, DK)
        state_offs = pid_bh * DK * DV + offs_d[:, None] * DV + offs_v[None, :]
        state_mask = mask_d[:, None] & mask_v[None, :]
        if HAS_INITIAL:
            state = tl.load(S0 + state_offs, mask=state_mask, other=0.0)
            norm = tl.load(Z0 + pid_bh * DK + offs_d, mask=mask_d, other=0.0)
        else:
            state = tl.zeros([BD, BV], dtype=tl.float32)  # S = sum_s phi(k_s) v_s^T
            norm = tl.zeros([BD], dtype=tl.float32)  # z = sum_s phi(k_s)

        if CAUSAL:
            causal = offs_t[:, None] >= offs_t[None, :]
            for start in range(0, LQ, BT):
                rows = start + offs_t
                q = _load_features(q_base, rows, LQ, sqt, offs_d, mask_d, FEATURE)
                kt, v = _load_keys_values(k_base, v_base, rows, LK, skt, svt, offs_d, mask_d,
                                          offs_v, mask_v, FEATURE)
                scores = tl.dot(q, kt, input_precision=PRECISION)
                scores = tl.where(causal, scores, 0.0)
                num = tl.dot(scores, v, input_precision=PRECISION)
                num = tl.dot(q, state, num, input_precision=PRECISION)
                den = tl.sum(scores, axis=1) + tl.sum(q * norm[None, :], axis=1) + eps
                _store_rows(o_base, num / den[:, None], rows, LQ, sot, offs_v, mask_v)

                state = tl.dot(kt, v, state, input_precision=PRECISION)
                norm += tl.sum(kt, axis=1)
        else:
            for start in range(0, LK, BT):
                kt, v = _load_keys_values(k_base, v_base, start + offs_t, LK, skt, svt, offs_d,
                                          mask_d, offs_v, mask_v, FEATURE)
                state = tl.dot(kt, v, state, input_precision=PRECISION)
                norm += tl.sum(kt, axis=1)
            for start in range(0, LQ, BT):
                rows = start + offs_t
                q = _load_features(q_base, rows, LQ, sqt, offs_d, mask_d, FEATURE)
                num = tl.dot(q, state, input_precision=PRECISION)
                den = tl.sum(q * norm[None, :], axis=1) + eps
                _store_rows(o_base, num / den[:, None], rows, LQ, sot, offs_v, mask_v)
        tl.store(SF + state_offs, state, mask=state_mask)
        tl.store(ZF + pid_bh * DK + offs_d, norm, mask=mask_d & (pid_v == 0))


def _blocks(block_d: int, causal: bool, precision: str) -> tuple[int, int]:
    """``(BT, BV)``: positions per chunk and value columns per program, with 8 warps.

    Chosen without a GPU, by compiling the kernel for sm_90 (H100) with Triton 3.9 and
    reading register spills and shared memory from the cubin: the largest blocks that do not
    spill (or spill least, for 256 features and the exact float32 path). Not yet timed.
    """
    if not causal:
        return 64, 64 if block_d <= 128 else 32
    if precision == "tf32":
        return (64, 64) if block_d <= 64 else (32, 32) if block_d == 128 else (32, 16)
    return (32, 32) if block_d <= 32 else (32, 16)


def _heads_view(x: torch.Tensor) -> tuple[torch.Tensor, int, int, tuple[int, int, int]]:
    """``x`` as ``(B, H, T, D)`` with unit stride on D, plus B, H and its (B, H, T) strides.

    A 4-d input keeps its own strides (a ``(B, T, H, D)`` tensor transposed to
    ``(B, H, T, D)`` is read in place, and expanded batch dims have stride 0); other leading
    shapes are folded into one batch axis.
    """
    if x.dim() != 4:
        x = x.reshape(-1, 1, *x.shape[-2:])
    if x.stride(-1) != 1:
        x = x.contiguous()
    return x, x.shape[0], x.shape[1], (x.stride(0), x.stride(1), x.stride(2))


def _state_arg(x: torch.Tensor, lead: torch.Size, shape: tuple[int, ...]) -> torch.Tensor:
    """A carried state as the contiguous float32 ``(prod(lead), *shape)`` the kernel reads."""
    if x.shape != (*lead, *shape):
        raise ValueError(f"the state must have shape {(*lead, *shape)}, got {tuple(x.shape)}")
    return x.to(torch.float32).reshape(-1, *shape).contiguous()


def linear_attention_triton(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
                            feature: str, causal: bool, eps: float, initial_state=None,
                            cu_seqlens: torch.Tensor | None = None,
                            precision: str | None = None):
    """Launch the fused kernel on inputs that :func:`~kernelnotes.linear_attention` broadcast.

    ``q, k`` are ``(..., L, dk)`` and ``(..., S, dk)`` raw inputs (or precomputed features
    with ``feature="identity"``), ``v`` is ``(..., S, dv)``; all share the leading shape
    (checked, not broadcast), none is empty, and ``L == S`` when ``causal``.
    ``initial_state`` is None or ``(S0, z0)`` of shapes ``(..., dk, dv)`` and ``(..., dk)``.
    ``cu_seqlens`` (int32 or int64, on the inputs' device, checked by the caller): the inputs
    are ``(1, H, T, d)`` packs of ``N`` sequences starting at ``cu_seqlens[:-1]``, and the
    states are per sequence, ``(N, H, dk, dv)`` and ``(N, H, dk)``.
    Returns ``(out, (S, z))``: the output in ``v``'s dtype and the final state in float32.
    ``precision`` is the ``tl.dot`` input precision: ``"ieee"`` (exact float32 products; the
    default for float32 inputs) or ``"tf32"`` (tensor cores; the default for
    float16/bfloat16 inputs, whose own rounding is coarser than TF32's).
    """
    if not HAS_TRITON:
        raise ImportError("backend='triton' needs the triton package (pip install triton)")
    # cheap checks: a mismatch here would make the kernel read out of bounds, not fail
    if feature not in FEATURE_IDS:
        raise ValueError(f"feature must be one of {sorted(FEATURE_IDS)}, got {feature!r}")
    if not q.shape[:-2] == k.shape[:-2] == v.shape[:-2]:
        raise ValueError(f"q, k and v must share their leading dims (broadcast them first), "
                         f"got {tuple(q.shape)}, {tuple(k.shape)} and {tuple(v.shape)}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"q, k and v must be (..., L, dk), (..., S, dk) and (..., S, dv), "
                         f"got {tuple(q.shape)}, {tuple(k.shape)} and {tuple(v.shape)}")
    if causal and q.shape[-2] != k.shape[-2]:
        raise ValueError(f"causal=True needs as many queries as keys, got q with "
                         f"{q.shape[-2]} and k with {k.shape[-2]} positions")
    if not q.device == k.device == v.device:
        raise ValueError(f"q, k and v must be on one device, got {q.device}, {k.device} "
                         f"and {v.device}")
    if q.shape[-1] > MAX_FEATURE_DIM:
        raise ValueError(f"q and k may have at most {MAX_FEATURE_DIM} features, "
                         f"got {q.shape[-1]}")
    if min(q.shape) == 0 or min(v.shape) == 0:
        raise ValueError(f"the kernel needs non-empty inputs, got {tuple(q.shape)}, "
                         f"{tuple(k.shape)} and {tuple(v.shape)}")
    if precision is None:
        precision = "ieee" if q.dtype == torch.float32 and v.dtype == torch.float32 else "tf32"
    if precision not in ("ieee", "tf32"):
        raise ValueError(f"precision must be 'ieee' or 'tf32', got {precision!r}")
    lq, dk = q.shape[-2:]
    lk, dv = v.shape[-2:]
    out = torch.empty(*v.shape[:-2], lq, dv, dtype=v.dtype, device=v.device)
    (q4, batch, heads, sq), (k4, _, _, sk), (v4, _, _, sv), (o4, _, _, so) = (
        _heads_view(x) for x in (q, k, v, out))
    if cu_seqlens is not None:
        if q.dim() != 4 or batch != 1 or lq != lk:
            raise ValueError(f"cu_seqlens needs q, k and v of shape (1, H, T, d), got "
                             f"{tuple(q.shape)}, {tuple(k.shape)} and {tuple(v.shape)}")
        batch = cu_seqlens.numel() - 1
    lead = (batch, heads) if q.dim() == 4 else v.shape[:-2]
    final_S = torch.empty(*lead, dk, dv, dtype=torch.float32, device=v.device)
    final_z = torch.empty(*lead, dk, dtype=torch.float32, device=v.device)
    if initial_state is None:
        S0 = z0 = final_S  # never read
    else:
        S0 = _state_arg(initial_state[0], lead, (dk, dv))
        z0 = _state_arg(initial_state[1], lead, (dk,))
    block_d = max(16, triton.next_power_of_2(dk))
    block_t, block_v = _blocks(block_d, bool(causal), precision)
    block_v = min(block_v, max(16, triton.next_power_of_2(dv)))
    grid = (batch * heads, triton.cdiv(dv, block_v))
    _linear_attention_kernel[grid](
        q4, k4, v4, o4, S0, z0, final_S, final_z,
        final_z if cu_seqlens is None else cu_seqlens, *sq, *sk, *sv, *so,
        heads, lq, lk, dk, dv, float(eps),
        FEATURE=FEATURE_IDS[feature], CAUSAL=bool(causal),
        HAS_INITIAL=initial_state is not None, IS_VARLEN=cu_seqlens is not None,
        PRECISION=precision,
        BT=block_t, BD=block_d, BV=block_v, num_warps=8, num_stages=2,
    )
    return out, (final_S, final_z)
