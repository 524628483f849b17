"""Fused Triton kernels for linear attention (the ``backend="triton"`` of ``linear_attention``).

Import-guarded: without the ``triton`` package :data:`HAS_TRITON` is False and nothing here
can run; :func:`kernelnotes.linear_attention` then falls back to its torch backends. On a
machine without a GPU the kernels run under the Triton interpreter when ``TRITON_INTERPRET=1``
was set before ``triton`` was first imported (the interpreter replaces ``@triton.jit`` at
decoration time).

One forward kernel covers both cases. A program owns one ``(batch, head)`` pair (or one
``(sequence, head)`` of a packed batch, ``cu_seqlens``) and one block of
value columns, and keeps the state ``S = S0 + phi(K)^T V`` (``dk x BV``) and the normaliser
``z = z0 + phi(K)^T 1`` in registers, in float32, starting from the carried state ``(S0, z0)``
when there is one and writing the final state at the end:

* non-causal: one pass over the keys builds ``S`` and ``z``, a second pass over the queries
  writes ``phi(q) S / (phi(q) . z + eps)``;
* causal: one pass over chunks of 32 or 64 positions (see :func:`_blocks`). Each chunk adds
  the contribution of the earlier chunks through the carried state, ``phi(Q_c) S``, to its
  own masked quadratic part, ``tril(phi(Q_c) phi(K_c)^T) V_c``, and then folds its keys
  into the state.

Two backward kernels (:func:`linear_attention_triton_backward`) walk the sequence forward
(recomputing the state; ``dq``) and backward (carrying the state's gradient; ``dk``, ``dv``
and the initial state's gradients); nothing of size ``seq x seq`` or ``seq x dk x dv`` is
stored.

Loaded blocks are converted to float32 before any arithmetic (bfloat16 loads are wrong under
the interpreter, and the feature maps must not lose precision). Only plain pointer arithmetic
with masks is used (no block pointers), so the code runs on Triton 3.6 and 3.9 alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

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

__all__ = [
    "HAS_TRITON",
    "INTERPRET",
    "MAX_FEATURE_DIM",
    "linear_attention_triton",
    "linear_attention_triton_backward",
]

#: True when the kernels run on CPU tensors through the Triton interpreter. Read once, here,
#: because Triton reads the variable when the kernels below are decorated.
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"

#: Largest feature dimension the kernel keeps on chip (the state is ``dk x BV`` floats).
MAX_FEATURE_DIM = 256

if HAS_TRITON:
    # the ids of the maps the kernel applies itself, from the one registry
    _ELU_PLUS_ONE = tl.constexpr(FEATURE_IDS["elu+1"])
    _RELU = tl.constexpr(FEATURE_IDS["relu"])
    _IDENTITY = tl.constexpr(FEATURE_IDS["identity"])

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
    def _feature_grad(x, FEATURE: tl.constexpr):
        """``phi'(x)`` in float32 for the maps with a derivative other than 1."""
        if FEATURE == _ELU_PLUS_ONE:
            return tl.where(x > 0, 1.0, tl.exp(tl.minimum(x, 0.0)))
        else:  # relu
            return tl.where(x > 0, 1.0, 0.0)

    @triton.jit
    def _load_rows(base, rows, n, stride_t, offs_c, mask_c):
        """One ``(BT, BC)`` block of rows in float32; rows past ``n`` and padding are 0.

        Row offsets are int64: a head slice can pass 2**31 elements.
        """
        mask = (rows < n)[:, None] & mask_c[None, :]
        x = tl.load(base + rows.to(tl.int64)[:, None] * stride_t + offs_c[None, :], mask=mask,
                    other=0.0)
        return x.to(tl.float32)

    @triton.jit
    def _load_features(base, rows, n, stride_t, offs_d, mask_d, FEATURE: tl.constexpr):
        """phi of one block of rows, ``(BT, BD)`` float32; rows past ``n`` and padding are 0."""
        x = _load_rows(base, rows, n, stride_t, offs_d, mask_d)
        return _feature(x, (rows < n)[:, None] & mask_d[None, :], FEATURE)

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
    def _sequence(CU, pid_bh, H, LQ, LK, IS_VARLEN: tl.constexpr):
        """``(b, h, first, lq, lk)`` of one program: its batch entry and head, the first row
        of its sequence, and the lengths of its queries and keys."""
        b = pid_bh // H
        h = pid_bh % H
        first = b * 0
        lq = LQ
        lk = LK
        if IS_VARLEN:  # sequence b of the packed batch of one: rows CU[b] to CU[b + 1]
            first = tl.load(CU + b).to(tl.int64)
            lq = (tl.load(CU + b + 1).to(tl.int64) - first).to(tl.int32)
            lk = lq
            b = b * 0
        return b, h, first, lq, lk

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
        b, h, first, LQ, LK = _sequence(CU, pid_bh, H, LQ, LK, IS_VARLEN)
        q_base = Q + b * sqb + h * sqh + first * sqt
        k_base = K + b * skb + h * skh + first * skt
        v_base = V + b * svb + h * svh + first * svt
        o_base = O + b * sob + h * soh + first * sot

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

    # The backward pass. With g_i = dL/do_i, d_i the denominator of row i, G_i = g_i / d_i and
    # c_i = -(g_i . o_i) / d_i (delta_i = g_i . o_i is computed once, outside):
    #   dphi(q_i) = S_i G_i + c_i z_i
    #   dphi(k_j) = dS_j v_j + dz_j,  dv_j = dS_j^T phi(k_j)
    #   with dS_j = dS + sum_{i >= j} phi(q_i) G_i^T and dz_j = dz + sum_{i >= j} c_i phi(q_i)
    # (all i and j when not causal; dS, dz the gradients of the final state, and dS_0, dz_0
    # those of the initial state). A program owns BV value columns, so its dphi(q), dphi(k)
    # are partial sums over its columns (the c and dz terms are added by the first program
    # only); the launcher adds the partials. dv and dS are the program's own columns.

    @triton.jit
    def _backward_q_kernel(
        Q, K, V, G, DELTA, DEN, DQ, S0, Z0, CU,
        sqb, sqh, sqt, skb, skh, skt, svb, svh, svt, sgb, sgh, sgt, sdv, sdb, sdh, sdt,
        H, T, LQ, LK, DK, DV, eps,
        FEATURE: tl.constexpr, CAUSAL: tl.constexpr, HAS_INITIAL: tl.constexpr,
        IS_VARLEN: tl.constexpr, PRECISION: tl.constexpr,
        BT: tl.constexpr, BD: tl.constexpr, BV: tl.constexpr,
    ):
        """Partial ``dphi(q) * phi'(q)`` of one program, and the denominators ``DEN``."""
        pid_bh = tl.program_id(0).to(tl.int64)
        pid_v = tl.program_id(1)
        b, h, first, LQ, LK = _sequence(CU, pid_bh, H, LQ, LK, IS_VARLEN)
        q_base = Q + b * sqb + h * sqh + first * sqt
        k_base = K + b * skb + h * skh + first * skt
        v_base = V + b * svb + h * svh + first * svt
        g_base = G + b * sgb + h * sgh + first * sgt
        dq_base = DQ + pid_v * sdv + b * sdb + h * sdh + first * sdt
        row_base = (b * H + h) * T + first  # DELTA and DEN are (B, H, T)

        offs_t = tl.arange(0, BT)
        offs_d = tl.arange(0, BD)
        offs_v = pid_v * BV + tl.arange(0, BV)
        mask_d = offs_d < DK
        mask_v = offs_v < DV
        lead = (pid_v == 0).to(tl.float32)  # 1 for the program that adds the c terms

        state_offs = pid_bh * DK * DV + offs_d[:, None] * DV + offs_v[None, :]
        if HAS_INITIAL:
            state = tl.load(S0 + state_offs, mask=mask_d[:, None] & mask_v[None, :], other=0.0)
            norm = tl.load(Z0 + pid_bh * DK + offs_d, mask=mask_d, other=0.0)
        else:
            state = tl.zeros([BD, BV], dtype=tl.float32)
            norm = tl.zeros([BD], dtype=tl.float32)

        if not CAUSAL:
            for start in range(0, LK, BT):
                kt, v = _load_keys_values(k_base, v_base, start + offs_t, LK, skt, svt, offs_d,
                                          mask_d, offs_v, mask_v, FEATURE)
                state = tl.dot(kt, v, state, input_precision=PRECISION)
                norm += tl.sum(kt, axis=1)
        causal = offs_t[:, None] >= offs_t[None, :]
        for start in range(0, LQ, BT):
            rows = start + offs_t
            x = _load_rows(q_base, rows, LQ, sqt, offs_d, mask_d)
            q = _feature(x, (rows < LQ)[:, None] & mask_d[None, :], FEATURE)
            g = _load_rows(g_base, rows, LQ, sgt, offs_v, mask_v)
            delta = tl.load(DELTA + row_base + rows, mask=rows < LQ, other=0.0)
            den = tl.sum(q * norm[None, :], axis=1) + eps
            if CAUSAL:
                kt, v = _load_keys_values(k_base, v_base, rows, LK, skt, svt, offs_d, mask_d,
                                          offs_v, mask_v, FEATURE)
                scores = tl.where(causal, tl.dot(q, kt, input_precision=PRECISION), 0.0)
                den += tl.sum(scores, axis=1)
            scaled = g / den[:, None]
            c = -delta / den
            dq = tl.dot(scaled, tl.trans(state), input_precision=PRECISION)
            dq += lead * c[:, None] * norm[None, :]
            if CAUSAL:
                weights = tl.dot(scaled, tl.trans(v), input_precision=PRECISION)
                weights = tl.where(causal, weights + lead * c[:, None], 0.0)
                dq = tl.dot(weights, tl.trans(kt), dq, input_precision=PRECISION)
                state = tl.dot(kt, v, state, input_precision=PRECISION)
                norm += tl.sum(kt, axis=1)
            if FEATURE != _IDENTITY:
                dq *= _feature_grad(x, FEATURE)
            _store_rows(dq_base, dq, rows, LQ, sdt, offs_d, mask_d)
            tl.store(DEN + row_base + rows, den, mask=(rows < LQ) & (pid_v == 0))

    @triton.jit
    def _backward_kv_kernel(
        Q, K, V, G, DELTA, DEN, DKEYS, DVALUES, DSF, DZF, DS0, DZ0, CU,
        sqb, sqh, sqt, skb, skh, skt, svb, svh, svt, sgb, sgh, sgt, sdkv, sdkb, sdkh, sdkt,
        sdvb, sdvh, sdvt,
        H, T, LQ, LK, DK, DV,
        FEATURE: tl.constexpr, CAUSAL: tl.constexpr, IS_VARLEN: tl.constexpr,
        PRECISION: tl.constexpr, BT: tl.constexpr, BD: tl.constexpr, BV: tl.constexpr,
    ):
        """Partial ``dphi(k) * phi'(k)``, ``dv`` and the initial state's gradients."""
        pid_bh = tl.program_id(0).to(tl.int64)
        pid_v = tl.program_id(1)
        b, h, first, LQ, LK = _sequence(CU, pid_bh, H, LQ, LK, IS_VARLEN)
        q_base = Q + b * sqb + h * sqh + first * sqt
        k_base = K + b * skb + h * skh + first * skt
        v_base = V + b * svb + h * svh + first * svt
        g_base = G + b * sgb + h * sgh + first * sgt
        dk_base = DKEYS + pid_v * sdkv + b * sdkb + h * sdkh + first * sdkt
        dv_base = DVALUES + b * sdvb + h * sdvh + first * sdvt
        row_base = (b * H + h) * T + first

        offs_t = tl.arange(0, BT)
        offs_d = tl.arange(0, BD)
        offs_v = pid_v * BV + tl.arange(0, BV)
        mask_d = offs_d < DK
        mask_v = offs_v < DV
        lead = (pid_v == 0).to(tl.float32)

        state_offs = pid_bh * DK * DV + offs_d[:, None] * DV + offs_v[None, :]
        state_mask = mask_d[:, None] & mask_v[None, :]
        dstate = tl.load(DSF + state_offs, mask=state_mask, other=0.0)
        dnorm = tl.load(DZF + pid_bh * DK + offs_d, mask=mask_d, other=0.0)

        if CAUSAL:
            later = offs_t[None, :] >= offs_t[:, None]  # [j, i]: query i sees key j
            n_chunks = tl.cdiv(LQ, BT)
            for back in range(0, n_chunks):
                rows = (n_chunks - 1 - back) * BT + offs_t
                q = _load_features(q_base, rows, LQ, sqt, offs_d, mask_d, FEATURE)
                x = _load_rows(k_base, rows, LK, skt, offs_d, mask_d)
                k = _feature(x, (rows < LK)[:, None] & mask_d[None, :], FEATURE)
                v = _load_rows(v_base, rows, LK, svt, offs_v, mask_v)
                g = _load_rows(g_base, rows, LQ, sgt, offs_v, mask_v)
                den = tl.load(DEN + row_base + rows, mask=rows < LQ, other=1.0)
                delta = tl.load(DELTA + row_base + rows, mask=rows < LQ, other=0.0)
                scaled = g / den[:, None]
                c = -delta / den
                weights = tl.dot(v, tl.trans(scaled), input_precision=PRECISION)
                weights = tl.where(later, weights + lead * c[None, :], 0.0)
                dk = tl.dot(v, tl.trans(dstate), input_precision=PRECISION)
                dk += lead * dnorm[None, :]
                dk = tl.dot(weights, q, dk, input_precision=PRECISION)
                scores = tl.where(later, tl.dot(k, tl.trans(q), input_precision=PRECISION), 0.0)
                dv = tl.dot(k, dstate, input_precision=PRECISION)
                dv = tl.dot(scores, scaled, dv, input_precision=PRECISION)
                if FEATURE != _IDENTITY:
                    dk *= _feature_grad(x, FEATURE)
                _store_rows(dk_base, dk, rows, LK, sdkt, offs_d, mask_d)
                _store_rows(dv_base, dv, rows, LK, sdvt, offs_v, mask_v)
                dstate = tl.dot(tl.trans(q), scaled, dstate, input_precision=PRECISION)
                dnorm += tl.sum(q * c[:, None], axis=0)
        else:
            for start in range(0, LQ, BT):
                rows = start + offs_t
                q = _load_features(q_base, rows, LQ, sqt, offs_d, mask_d, FEATURE)
                g = _load_rows(g_base, rows, LQ, sgt, offs_v, mask_v)
                den = tl.load(DEN + row_base + rows, mask=rows < LQ, other=1.0)
                delta = tl.load(DELTA + row_base + rows, mask=rows < LQ, other=0.0)
                dstate = tl.dot(tl.trans(q), g / den[:, None], dstate,
                                input_precision=PRECISION)
                dnorm += tl.sum(q * (-delta / den)[:, None], axis=0)
            for start in range(0, LK, BT):
                rows = start + offs_t
                x = _load_rows(k_base, rows, LK, skt, offs_d, mask_d)
                k = _feature(x, (rows < LK)[:, None] & mask_d[None, :], FEATURE)
                v = _load_rows(v_base, rows, LK, svt, offs_v, mask_v)
                dk = tl.dot(v, tl.trans(dstate), input_precision=PRECISION)
                dk += lead * dnorm[None, :]
                if FEATURE != _IDENTITY:
                    dk *= _feature_grad(x, FEATURE)
                _store_rows(dk_base, dk, rows, LK, sdkt, offs_d, mask_d)
                _store_rows(dv_base, tl.dot(k, dstate, input_precision=PRECISION), rows, LK,
                            sdvt, offs_v, mask_v)
        tl.store(DS0 + state_offs, dstate, mask=state_mask)
        tl.store(DZ0 + pid_bh * DK + offs_d, dnorm, mask=mask_d & (pid_v == 0))


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


@dataclass
class _Launch:
    """What both passes need: the inputs as ``(B, H, T, D)`` views, their strides, sizes,
    block sizes and grid, and the state's leading shape."""

    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    strides: tuple[int, ...]
    heads: int
    lead: tuple[int, ...]
    sizes: tuple[int, int, int, int]  # lq, lk, dk, dv
    blocks: dict
    grid: tuple[int, int]
    constants: dict
    cu_seqlens: torch.Tensor | None


def _prepare(q, k, v, *, feature, causal, cu_seqlens, precision, backward) -> _Launch:
    """Check what would make a kernel read out of bounds, and lay out one launch."""
    if not HAS_TRITON:
        raise ImportError("backend='triton' needs the triton package (pip install triton)")
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
    (q4, batch, heads, sq), (k4, _, _, sk), (v4, _, _, sv) = (_heads_view(x) for x in (q, k, v))
    if cu_seqlens is not None:
        if q.dim() != 4 or batch != 1 or lq != lk:
            raise ValueError(f"cu_seqlens needs q, k and v of shape (1, H, T, d), got "
                             f"{tuple(q.shape)}, {tuple(k.shape)} and {tuple(v.shape)}")
        batch = cu_seqlens.numel() - 1
    block_d = max(16, triton.next_power_of_2(dk))
    # the backward passes hold more tiles at once: the causal blocks suit them
    block_t, block_v = _blocks(block_d, bool(causal) or backward, precision)
    block_v = min(block_v, max(16, triton.next_power_of_2(dv)))
    return _Launch(
        q=q4, k=k4, v=v4, strides=(*sq, *sk, *sv), heads=heads,
        lead=(batch, heads) if q.dim() == 4 else tuple(v.shape[:-2]),
        sizes=(lq, lk, dk, dv), blocks={"BT": block_t, "BD": block_d, "BV": block_v},
        grid=(batch * heads, triton.cdiv(dv, block_v)), cu_seqlens=cu_seqlens,
        constants={"FEATURE": FEATURE_IDS[feature], "CAUSAL": bool(causal),
                   "IS_VARLEN": cu_seqlens is not None, "PRECISION": precision})


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
    run = _prepare(q, k, v, feature=feature, causal=causal, cu_seqlens=cu_seqlens,
                   precision=precision, backward=False)
    lq, lk, dk, dv = run.sizes
    out = torch.empty(*v.shape[:-2], lq, dv, dtype=v.dtype, device=v.device)
    o4, _, _, so = _heads_view(out)
    final_S = torch.empty(*run.lead, dk, dv, dtype=torch.float32, device=v.device)
    final_z = torch.empty(*run.lead, dk, dtype=torch.float32, device=v.device)
    if initial_state is None:
        S0 = z0 = final_S  # never read
    else:
        S0 = _state_arg(initial_state[0], run.lead, (dk, dv))
        z0 = _state_arg(initial_state[1], run.lead, (dk,))
    _linear_attention_kernel[run.grid](
        run.q, run.k, run.v, o4, S0, z0, final_S, final_z,
        final_z if cu_seqlens is None else cu_seqlens, *run.strides, *so,
        run.heads, lq, lk, dk, dv, float(eps), HAS_INITIAL=initial_state is not None,
        **run.constants, **run.blocks, num_warps=8, num_stages=2,
    )
    return out, (final_S, final_z)


def linear_attention_triton_backward(q, k, v, out, grad_out, grad_state, *, feature: str,
                                     causal: bool, eps: float, initial_state=None,
                                     cu_seqlens: torch.Tensor | None = None,
                                     precision: str | None = None):
    """Gradients of :func:`linear_attention_triton`'s inputs, from two kernels.

    ``out`` is the forward's output, ``grad_out`` its gradient, ``grad_state`` the gradients
    ``(dS, dz)`` of the final state (zeros when it was not used). The first kernel walks
    forward in time, recomputing the state, and writes ``dq`` and the denominators; the
    second walks backward, carrying the state's gradient, and writes ``dk``, ``dv`` and the
    initial state's gradients. Memory is linear in the sequence: per row, the denominator,
    ``g . o`` and one partial ``dq`` and ``dk`` per block of value columns.
    Returns ``(dq, dk, dv, (dS0, dz0))`` in the dtypes of ``q, k, v`` and float32.
    """
    run = _prepare(q, k, v, feature=feature, causal=causal, cu_seqlens=cu_seqlens,
                   precision=precision, backward=True)
    lq, lk, dk, dv = run.sizes
    batch, heads = run.q.shape[:2]
    device = v.device
    g4, _, _, sg = _heads_view(grad_out)
    delta = (grad_out.float() * out.float()).sum(-1).reshape(batch, heads, lq).contiguous()
    den = torch.empty_like(delta)
    n_v = run.grid[1]
    dq = torch.empty(n_v, batch, heads, lq, dk, dtype=torch.float32, device=device)
    dkeys = torch.empty(n_v, batch, heads, lk, dk, dtype=torch.float32, device=device)
    dvalues = torch.empty(batch, heads, lk, dv, dtype=torch.float32, device=device)
    dS0 = torch.empty(*run.lead, dk, dv, dtype=torch.float32, device=device)
    dz0 = torch.empty(*run.lead, dk, dtype=torch.float32, device=device)
    dS = _state_arg(grad_state[0], run.lead, (dk, dv))
    dz = _state_arg(grad_state[1], run.lead, (dk,))
    if initial_state is None:
        S0 = z0 = dS0  # never read
    else:
        S0 = _state_arg(initial_state[0], run.lead, (dk, dv))
        z0 = _state_arg(initial_state[1], run.lead, (dk,))
    cu = dz0 if cu_seqlens is None else cu_seqlens
    _backward_q_kernel[run.grid](
        run.q, run.k, run.v, g4, delta, den, dq, S0, z0, cu, *run.strides, *sg,
        *dq.stride()[:4], run.heads, lq, lq, lk, dk, dv, float(eps),
        HAS_INITIAL=initial_state is not None, **run.constants, **run.blocks,
        num_warps=8, num_stages=2,
    )
    _backward_kv_kernel[run.grid](
        run.q, run.k, run.v, g4, delta, den, dkeys, dvalues, dS, dz, dS0, dz0, cu,
        *run.strides, *sg, *dkeys.stride()[:4], *dvalues.stride()[:3],
        run.heads, lq, lq, lk, dk, dv, **run.constants, **run.blocks,
        num_warps=8, num_stages=2,
    )
    return (dq.sum(0).reshape(q.shape).to(q.dtype), dkeys.sum(0).reshape(k.shape).to(k.dtype),
            dvalues.reshape(v.shape).to(v.dtype), (dS0, dz0))
