"""Linear attention: torch backends against an independent float64 reference, feature maps,
FAVOR+, low precision, memory, gradients, the module and bad input.

The Triton backend has its own file, tests/test_linear_triton.py.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelnotes import FavorFeatures, LinearAttention, linear_attention, nadaraya_watson
from kernelnotes.linear import elu_plus_one
from kernelnotes.linear import triton as lt
from kernelnotes.measure import peak_memory

F64 = torch.float64
TORCH_BACKENDS = ("quadratic", "recurrent", "torch")


def rel_err(out, ref):
    """``|out - ref| / |ref|`` in Frobenius norms, computed in float64."""
    out, ref = out.double(), ref.double()
    return ((out - ref).norm() / ref.norm()).item()


def random_qkv(seed, lq, d, dv, *, lead=(2, 3), lk=None, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    lk = lq if lk is None else lk
    return (torch.randn(*lead, lq, d, generator=g, dtype=dtype),
            torch.randn(*lead, lk, d, generator=g, dtype=dtype),
            torch.randn(*lead, lk, dv, generator=g, dtype=dtype))


def explicit(q, k, v, phi=elu_plus_one, causal=False, eps=1e-6):
    """The definition, sum by sum, in float64: independent of every backend."""
    fq, fk, v = phi(q.double()), phi(k.double()), v.double()
    weights = torch.einsum("...id,...jd->...ij", fq, fk)
    if causal:
        weights = weights * torch.ones(weights.shape[-2:], dtype=F64).tril()
    return torch.einsum("...ij,...jv->...iv", weights, v) / (weights.sum(-1)[..., None] + eps)


# --- the reference itself ------------------------------------------------------------------

@pytest.mark.parametrize("causal", [False, True])
def test_quadratic_backend_is_the_definition(causal):
    q, k, v = random_qkv(0, 37, 5, 3)
    out = linear_attention(q, k, v, causal=causal, backend="quadratic")
    assert rel_err(out, explicit(q, k, v, causal=causal)) < 1e-13


def test_linear_attention_is_nadaraya_watson_with_a_factored_kernel():
    q, k, v = random_qkv(1, 20, 4, 2)

    def kernel(x, y):
        return elu_plus_one(x) @ elu_plus_one(y).mT

    mask = torch.ones(20, 20, dtype=torch.bool).tril()
    expected, _ = nadaraya_watson(q, k, v, kernel, mask=mask)
    out = linear_attention(q, k, v, causal=True, eps=1e-300, backend="quadratic")
    assert rel_err(out, expected) < 1e-13


# --- every torch backend against the reference ---------------------------------------------

VALUE_DIM = {16: 24, 60: 33, 64: 64, 128: 40}


@pytest.mark.parametrize("backend", ["recurrent", "torch"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("d", [16, 60, 64, 128])
@pytest.mark.parametrize("seq", [1, 63, 500, 1000])
def test_backends_match_the_reference(seq, d, causal, backend):
    q, k, v = random_qkv(seq + d, seq, d, VALUE_DIM[d])
    ref = linear_attention(q, k, v, causal=causal, backend="quadratic")
    out = linear_attention(q, k, v, causal=causal, backend=backend)
    assert out.shape == (2, 3, seq, VALUE_DIM[d]) and out.dtype == F64
    assert rel_err(out, ref) < 1e-12
    # float32 inputs, compared with the float64 reference of the same (rounded) inputs
    q32, k32, v32 = (x.float() for x in (q, k, v))
    out32 = linear_attention(q32, k32, v32, causal=causal, backend=backend)
    assert out32.dtype == torch.float32
    assert rel_err(out32, explicit(q32, k32, v32, causal=causal)) < 1e-5


@given(seed=st.integers(0, 10**6), lq=st.integers(1, 80), lk=st.integers(1, 80),
       d=st.integers(1, 9), dv=st.integers(1, 9), causal=st.booleans(),
       lead=st.sampled_from([(), (2,), (1, 3), (2, 1, 2)]))
@settings(max_examples=40, deadline=None)
def test_backends_agree_on_random_shapes(seed, lq, lk, d, dv, causal, lead):
    lk = lq if causal else lk
    q, k, v = random_qkv(seed, lq, d, dv, lead=lead, lk=lk)
    ref = explicit(q, k, v, causal=causal)
    for backend in TORCH_BACKENDS:
        out = linear_attention(q, k, v, causal=causal, backend=backend)
        assert out.shape == (*lead, lq, dv)
        assert rel_err(out, ref) < 1e-12, backend


def test_auto_is_torch_on_cpu():
    q, k, v = random_qkv(2, 70, 8, 5)
    for causal in (False, True):
        auto = linear_attention(q, k, v, causal=causal)
        assert torch.equal(auto, linear_attention(q, k, v, causal=causal, backend="torch"))


def test_batch_dims_broadcast_and_numpy_is_accepted():
    q, k, v = random_qkv(3, 30, 6, 4)
    out = linear_attention(q, k[:1, :1], v[:1, :1], backend="torch")
    ref = explicit(q, k[:1, :1].expand_as(k), v[:1, :1].expand_as(v))
    assert rel_err(out, ref) < 1e-12
    out_np = linear_attention(q.numpy(), k.numpy(), v.numpy())
    assert rel_err(out_np, explicit(q, k, v)) < 1e-12


def test_different_query_and_key_lengths():
    q, k, v = random_qkv(4, 17, 6, 4, lk=45)
    for backend in TORCH_BACKENDS:
        out = linear_attention(q, k, v, backend=backend)
        assert out.shape == (2, 3, 17, 4)
        assert rel_err(out, explicit(q, k, v)) < 1e-12


# --- feature maps -----------------------------------------------------------------------------

@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("name, phi", [("relu", torch.relu), ("identity", F.softplus)])
def test_named_feature_maps(name, phi, causal):
    q, k, v = random_qkv(5, 90, 12, 7)
    if name == "identity":  # "identity" takes inputs that already are non-negative features
        q, k = F.softplus(q), F.softplus(k)
        phi = lambda x: x  # noqa: E731
    ref = explicit(q, k, v, phi=phi, causal=causal)
    for backend in TORCH_BACKENDS:
        out = linear_attention(q, k, v, feature_map=name, causal=causal, backend=backend)
        assert rel_err(out, ref) < 1e-12, backend


def test_callable_feature_map_may_change_the_width():
    def phi(x):  # degree-2 polynomial features: m = d^2, so the kernel is (q . k)^2
        return (x[..., :, None] * x[..., None, :]).flatten(-2)

    q, k, v = random_qkv(6, 40, 5, 3)
    ref = explicit(q, k, v, phi=phi, causal=True)
    squared = (q @ k.mT) ** 2 * torch.ones(40, 40, dtype=F64).tril()
    assert rel_err(ref, (squared @ v) / (squared.sum(-1, keepdim=True) + 1e-6)) < 1e-12
    for backend in TORCH_BACKENDS:
        out = linear_attention(q, k, v, feature_map=phi, causal=True, backend=backend)
        assert rel_err(out, ref) < 1e-12, backend


def test_relu_rows_with_no_weight_return_zero_not_nan():
    q, k, v = random_qkv(7, 10, 4, 3)
    out = linear_attention(-q.abs(), k, v, feature_map="relu", causal=True)
    assert torch.equal(out, torch.zeros_like(out))


def test_elu_plus_one_does_not_collapse_in_bfloat16():
    x = torch.tensor([-12.0, -8.0, -6.5, 0.5], dtype=torch.bfloat16)
    naive = F.elu(x) + 1  # the trap: 1 + (exp(x) - 1) rounds to exactly 0 in bfloat16
    assert (naive[:3] == 0).all()
    features = elu_plus_one(x)
    assert features.dtype == torch.float32 and (features > 0).all()
    exact = torch.where(x.double() > 0, x.double() + 1, torch.exp(x.double()))
    assert rel_err(features, exact) < 1e-6


def test_bfloat16_attention_with_very_negative_inputs():
    g = torch.Generator().manual_seed(8)
    q = (-10 + 0.5 * torch.randn(1, 2, 33, 8, generator=g)).bfloat16()
    k = (-10 + 0.5 * torch.randn(1, 2, 33, 8, generator=g)).bfloat16()
    v = torch.randn(1, 2, 33, 5, generator=g).bfloat16()
    ref = explicit(q, k, v, causal=True)
    assert ref.abs().max() > 0.1  # the weights are tiny but the averages are not
    for backend in TORCH_BACKENDS:
        out = linear_attention(q, k, v, causal=True, backend=backend)
        assert out.dtype == torch.bfloat16
        assert rel_err(out, ref) < 1e-2, backend  # bfloat16 output rounding: 2^-8


@pytest.mark.parametrize("dtype, tol", [(torch.float16, 2e-3), (torch.bfloat16, 1e-2)])
def test_half_precision_inputs(dtype, tol):
    q, k, v = (x.to(dtype) for x in random_qkv(9, 200, 32, 16))
    for causal in (False, True):
        ref = explicit(q, k, v, causal=causal)
        for backend in TORCH_BACKENDS:
            out = linear_attention(q, k, v, causal=causal, backend=backend)
            assert out.dtype == dtype
            assert rel_err(out, ref) < tol, backend


@pytest.mark.parametrize("causal", [False, True])
def test_float16_key_sums_do_not_overflow_at_seq_65536(causal):
    # phi(k) is about 3 per entry, so the key sum z reaches about 2e5 > 65504 = float16 max
    seq = 65536
    g = torch.Generator().manual_seed(10)
    q = (1 + torch.rand(1, 1, seq, 4, generator=g)).half()
    k = (1.5 + 0.5 * torch.rand(1, 1, seq, 4, generator=g)).half()
    v = torch.randn(1, 1, seq, 4, generator=g).half()
    assert not torch.isfinite(elu_plus_one(k).half().sum(-2)).all()  # z does not fit
    out = linear_attention(q, k, v, causal=causal, backend="torch")
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    ref = linear_attention(q.double(), k.double(), v.double(), causal=causal, backend="torch")
    assert rel_err(out, ref) < 2e-3


# --- FAVOR+ -----------------------------------------------------------------------------------

def favor_kernel(features, x, y):
    return features(x) @ features(y).mT  # no stabiliser: the unbiased estimator


@pytest.mark.parametrize("orthogonal", [True, False])
def test_favor_is_unbiased_for_exp_dot(orthogonal):
    g = torch.Generator().manual_seed(11)
    x = 0.4 * torch.randn(3, 6, generator=g, dtype=F64)
    y = 0.4 * torch.randn(4, 6, generator=g, dtype=F64)
    draws = torch.stack([
        favor_kernel(FavorFeatures(6, 8, orthogonal=orthogonal, generator=g), x, y)
        for _ in range(3000)])
    mean, sem = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    exact = torch.exp(x @ y.T)
    assert ((mean - exact).abs() < 4 * sem + 1e-3).all()  # within 4 standard errors


def test_favor_error_falls_with_the_number_of_features():
    g = torch.Generator().manual_seed(12)
    x = 0.25 * torch.randn(20, 8, generator=g, dtype=F64)  # |x| about 0.7
    exact = torch.exp(x @ x.T)

    def mse(m):
        return np.mean([((favor_kernel(FavorFeatures(8, m, generator=g), x, x) - exact) ** 2)
                        .mean().item() for _ in range(100)])

    errors = [mse(m) for m in (8, 64, 512)]
    assert errors[0] > 3 * errors[1] > 9 * errors[2]  # variance ~ 1 / m (8x per step)


def test_favor_orthogonal_blocks():
    w = FavorFeatures(5, 12, generator=torch.Generator().manual_seed(13)).projection.double()
    for start in (0, 5):
        block = w[start:start + 5]
        directions = block / block.norm(dim=1, keepdim=True)
        torch.testing.assert_close(directions @ directions.T, torch.eye(5, dtype=F64),
                                   atol=1e-6, rtol=0)


def test_favor_attention_approximates_softmax_attention():
    q, k, v = random_qkv(14, 64, 16, 8, lead=(1, 2))
    q, k = q / 2, k / 2  # moderate norms: the variance grows like exp(|q + k|^2 / sqrt(d))
    scale = 16 ** -0.25  # exp(q.k / sqrt(d)) = exp((q d^-1/4) . (k d^-1/4))
    softmax = torch.softmax(q @ k.mT / 4, dim=-1) @ v
    errors = []
    for m in (16, 4096):
        favor = FavorFeatures(16, m, generator=torch.Generator().manual_seed(15)).double()
        out = linear_attention(q * scale, k * scale, v, feature_map=favor)
        errors.append(rel_err(out, softmax))
    assert errors[1] < 0.1 < errors[0]


def test_favor_is_finite_for_large_query_norms():
    favor = FavorFeatures(16, 64, generator=torch.Generator().manual_seed(16))
    q, k, v = random_qkv(17, 50, 16, 4, dtype=torch.float32)
    for norm in (10.0, 50.0):
        big_q = norm * q / q.norm(dim=-1, keepdim=True)
        for causal in (False, True):
            out = linear_attention(big_q, 5 * k, v, feature_map=favor, causal=causal)
            assert torch.isfinite(out).all()
            # each output is a convex combination of values: inside their range
            assert (out.abs() <= v.abs().amax(dim=(-2, -1), keepdim=True) + 1e-4).all()
    with torch.no_grad():  # without the stabiliser every feature underflows to 0
        assert (favor(50.0 * q / q.norm(dim=-1, keepdim=True)) == 0).all()


def test_favor_stabilisers_cancel():
    favor = FavorFeatures(8, 32, generator=torch.Generator().manual_seed(18)).double()
    q, k, v = random_qkv(19, 30, 8, 3)
    for causal in (False, True):
        plain = explicit(q, k, v, phi=favor, causal=causal, eps=1e-300)
        out = linear_attention(q, k, v, feature_map=favor, causal=causal, eps=1e-300)
        assert rel_err(out, plain) < 1e-12


def test_favor_projection_is_fixed_until_redrawn():
    favor = FavorFeatures(4, 6, generator=torch.Generator().manual_seed(20))
    again = FavorFeatures(4, 6, generator=torch.Generator().manual_seed(20))
    assert torch.equal(favor.projection, again.projection)
    before = favor.projection.clone()
    x = torch.randn(3, 4)
    assert torch.equal(favor(x), favor(x))
    assert favor.redraw(torch.Generator().manual_seed(21)) is favor
    assert not torch.equal(favor.projection, before)


def test_favor_bad_arguments():
    for dim, m in ((0, 4), (4, 0), (2.5, 4), (True, 4)):
        with pytest.raises(ValueError, match=r"dim|num_features"):
            FavorFeatures(dim, m)
    with pytest.raises(ValueError, match="feature_map"):
        FavorFeatures(4, 8)(torch.randn(3, 5))


# --- memory -----------------------------------------------------------------------------------

def test_causal_torch_backend_memory_is_linear_in_seq():
    d = dv = 64
    peaks = {}
    for seq in (2048, 4096):
        q, k, v = random_qkv(22, seq, d, dv, lead=(1, 1), dtype=torch.float32)
        with torch.no_grad():
            _, peaks[seq] = peak_memory(linear_attention, q, k, v, causal=True, backend="torch")
    assert 1.8 < peaks[4096] / peaks[2048] < 2.2  # doubles with seq: linear
    # and stays far below one seq x dk x dv float32 tensor (what a naive cumsum would build)
    assert peaks[4096] < 4096 * d * dv * 4 / 4
    with torch.no_grad():  # while the quadratic reference needs seq^2
        _, quadratic = peak_memory(linear_attention, q, k, v, causal=True, backend="quadratic")
    assert quadratic > 4096 ** 2 * 4


# --- gradients --------------------------------------------------------------------------------

@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("backend", TORCH_BACKENDS)
def test_gradcheck(backend, causal):
    q, k, v = (x.requires_grad_() for x in random_qkv(23, 6, 3, 2, lead=(2,)))
    assert torch.autograd.gradcheck(
        lambda q, k, v: linear_attention(q, k, v, causal=causal, backend=backend), (q, k, v))


@pytest.mark.parametrize("causal", [False, True])
def test_gradients_match_the_reference(causal):
    favor = FavorFeatures(10, 16, generator=torch.Generator().manual_seed(24)).double()
    for feature_map in ("elu+1", favor):
        grads = {}
        for backend in TORCH_BACKENDS:
            q, k, v = (x.requires_grad_() for x in random_qkv(25, 150, 10, 7))
            out = linear_attention(q, k, v, feature_map=feature_map, causal=causal,
                                   backend=backend)
            (out * torch.linspace(-1, 1, out.numel(), dtype=F64).view_as(out)).sum().backward()
            grads[backend] = (q.grad, k.grad, v.grad)
        for backend in ("recurrent", "torch"):
            for g, ref in zip(grads[backend], grads["quadratic"], strict=True):
                assert rel_err(g, ref) < 1e-10


# --- the module -------------------------------------------------------------------------------

def test_module_shapes_causality_and_gradients():
    torch.manual_seed(26)
    layer = LinearAttention(24, 4, causal=True).double()
    x = torch.randn(2, 31, 24, dtype=F64, requires_grad=True)
    y = layer(x)
    assert y.shape == x.shape
    changed = x.detach().clone()
    changed[:, 20:] += 1.0  # the future must not change the past
    torch.testing.assert_close(layer(changed)[:, :20], y[:, :20], rtol=0, atol=1e-12)
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.parameters())


def test_module_matches_the_function():
    torch.manual_seed(27)
    layer = LinearAttention(12, 3, feature_map="relu").double()
    x, context = torch.randn(2, 9, 12, dtype=F64), torch.randn(2, 14, 12, dtype=F64)

    def heads(t):
        return t.view(2, -1, 3, 4).transpose(1, 2)

    out = linear_attention(heads(layer.q_proj(x)), heads(layer.k_proj(context)),
                           heads(layer.v_proj(context)), feature_map="relu")
    expected = layer.out_proj(out.transpose(1, 2).reshape(2, 9, 12))
    torch.testing.assert_close(layer(x, context), expected, rtol=0, atol=1e-12)


def test_module_with_favor_features_carries_them():
    favor = FavorFeatures(8, 32, generator=torch.Generator().manual_seed(28))
    layer = LinearAttention(16, 2, feature_map=favor)
    assert "feature_map.projection" in layer.state_dict()
    assert layer(torch.randn(1, 5, 16)).shape == (1, 5, 16)
    with pytest.raises(ValueError, match="feature_map"):
        LinearAttention(16, 4, feature_map=favor)


def test_module_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        LinearAttention(10, 3)
    with pytest.raises(ValueError, match="num_heads"):
        LinearAttention(10, 0)
    with pytest.raises(ValueError, match="backend"):
        LinearAttention(8, 2, backend="cuda")
    with pytest.raises(ValueError, match="eps"):
        LinearAttention(8, 2, eps=0)
    with pytest.raises(ValueError, match="x must have shape"):
        LinearAttention(8, 2)(torch.randn(2, 3, 7))


# --- bad input --------------------------------------------------------------------------------

def test_bad_input_is_rejected_by_name():
    q, k, v = random_qkv(29, 8, 4, 3)
    with pytest.raises(ValueError, match="q and k"):
        linear_attention(q, k[..., :3], v)
    with pytest.raises(ValueError, match="k and v"):
        linear_attention(q, k, v[..., :5, :])
    with pytest.raises(ValueError, match="causal"):
        linear_attention(q[..., :5, :], k, v, causal=True)
    with pytest.raises(ValueError, match="batch"):
        linear_attention(q, k[:1, :2], v[:1, :2])
    for eps in (0, -1e-6, float("nan")):
        with pytest.raises(ValueError, match="eps"):
            linear_attention(q, k, v, eps=eps)
    with pytest.raises(ValueError, match="backend"):
        linear_attention(q, k, v, backend="cuda")
    with pytest.raises(ValueError, match="feature_map"):
        linear_attention(q, k, v, feature_map="softmax")
    with pytest.raises(TypeError, match="feature_map"):
        linear_attention(q, k, v, feature_map=3)
    with pytest.raises(ValueError, match="feature_map"):
        linear_attention(q, k, v, feature_map=lambda x: x.sum(-1))
    with pytest.raises(ValueError, match="feature_map"):
        linear_attention(q, k, v, feature_map=FavorFeatures(5, 8))
    with pytest.raises(TypeError, match="q"):
        linear_attention(torch.ones(2, 3, dtype=torch.int64), k, v)
    with pytest.raises(TypeError, match="dtype"):
        linear_attention(q.float(), k, v)


def test_triton_backend_refuses_what_it_cannot_run(monkeypatch):
    q, k, v = random_qkv(30, 8, 4, 3)
    monkeypatch.setattr(lt, "INTERPRET", False)
    if lt.HAS_TRITON:
        with pytest.raises(ValueError, match="CUDA"):
            linear_attention(q.float(), k.float(), v.float(), backend="triton")
    monkeypatch.setattr(lt, "INTERPRET", True)
    monkeypatch.setattr(lt, "HAS_TRITON", True)
    with pytest.raises(TypeError, match="float64"):
        linear_attention(q, k, v, backend="triton")
    with pytest.raises(TypeError, match="bfloat16"):
        linear_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), backend="triton")
    with pytest.raises(ValueError, match="features"):
        wide = FavorFeatures(4, 300)
        linear_attention(q.float(), k.float(), v.float(), feature_map=wide, backend="triton")
    monkeypatch.setattr(lt, "HAS_TRITON", False)
    with pytest.raises(ImportError, match="triton"):
        linear_attention(q.float(), k.float(), v.float(), backend="triton")


@pytest.mark.parametrize("seq_q, seq_k", [(0, 5), (5, 0), (0, 0)])
def test_empty_sequences(seq_q, seq_k):
    q, k, v = random_qkv(31, seq_q, 4, 3, lk=seq_k)
    for backend in ("auto", *TORCH_BACKENDS):
        for causal in (False, True) if seq_q == seq_k else (False,):
            out = linear_attention(q, k, v, causal=causal, backend=backend)
            assert out.shape == (2, 3, seq_q, 3) and not out.any()
            out += 1  # a tensor of its own, not an expanded view of one zero
