"""The public entry linear_attention (kernelnotes.linear.attention): every backend against the
definition, the carried state, causality, dtypes, gradients, bad input.

The Triton kernels have their own file, tests/test_linear_triton.py; here the Triton backend
joins the state and causality properties wherever it runs (CUDA, or the interpreter).
"""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import (
    F64,
    TORCH_BACKENDS,
    TRITON_RUNS,
    explicit,
    random_qkv,
    rel_err,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelnotes import FavorFeatures, linear_attention
from kernelnotes.linear import elu_plus_one
from kernelnotes.linear import triton as lt
from kernelnotes.linear.feature_maps import resolve_feature_map

#: every backend that runs here; Triton computes in float32, the others get float64 inputs
BACKENDS = (*TORCH_BACKENDS, *(("triton",) if TRITON_RUNS else ()))
FEATURE_MAP_NAMES = ("elu+1", "relu", "identity", "favor", "polynomial")


def polynomial(x):
    """Degree-2 features, ``m = d^2``: the kernel ``(q . k)^2``."""
    return (x[..., :, None] * x[..., None, :]).flatten(-2)


def case(backend, feature_map, seed, seq, d=5, dv=3, lead=(2, 3)):
    """Inputs and a feature map for one backend: float64, or float32 for Triton (with the
    tolerance of float32 against a float64 reference)."""
    q, k, v = random_qkv(seed, seq, d, dv, lead=lead)
    if feature_map == "identity":  # inputs that already are non-negative features
        q, k = F.softplus(q), F.softplus(k)
    elif feature_map == "favor":
        q, k = q * d ** -0.25, k * d ** -0.25
        feature_map = FavorFeatures(d, 12, generator=torch.Generator().manual_seed(seed))
    elif feature_map == "polynomial":
        feature_map = polynomial
    if backend == "triton":
        return (q.float(), k.float(), v.float()), feature_map, 1e-5
    return (q, k, v), feature_map, 1e-12


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
    for flag in ("causal", "output_final_state"):
        for value in ("yes", None, 1):
            with pytest.raises(TypeError, match=flag):
                linear_attention(q, k, v, **{flag: value})
    assert linear_attention(q, k, v, causal=np.bool_(True)).shape == v.shape
    with pytest.raises(TypeError, match="backend"):
        linear_attention(q, k, v, backend=None)
    with pytest.raises(ValueError, match="q is a meta tensor"):
        linear_attention(q.to("meta"), k, v)


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


# --- the state -----------------------------------------------------------------------------

@pytest.mark.parametrize("feature_map", FEATURE_MAP_NAMES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_prefill_in_pieces_then_decoding_is_one_pass(backend, feature_map):
    (q, k, v), phi, tol = case(backend, feature_map, 50, 37)
    options = {"feature_map": phi, "causal": True, "backend": backend}
    full, (S, z) = linear_attention(q, k, v, output_final_state=True, **options)
    # the state is the definition's: S = sum_j phi(k_j) v_j^T, z = sum_j phi(k_j)
    _, fmap = resolve_feature_map(phi)
    fk = fmap(k.double(), False)
    m = fk.shape[-1]
    assert S.shape == (2, 3, m, 3) and z.shape == (2, 3, m)
    assert S.dtype == z.dtype == (F64 if q.dtype == F64 else torch.float32)
    assert rel_err(S, fk.mT @ v.double()) < tol and rel_err(z, fk.sum(-2)) < tol

    state, outputs = None, []
    bounds = [0, 13, 24, *range(25, 38)]  # two prompt pieces, then one token at a time
    for start, stop in itertools.pairwise(bounds):
        out, state = linear_attention(q[..., start:stop, :], k[..., start:stop, :],
                                      v[..., start:stop, :], initial_state=state,
                                      output_final_state=True, **options)
        outputs.append(out)
    assert rel_err(torch.cat(outputs, -2), full) < tol
    assert rel_err(state[0], S) < tol and rel_err(state[1], z) < tol


@pytest.mark.parametrize("backend", BACKENDS)
def test_state_matches_flash_linear_attentions_reference(backend):
    # fla's pure-torch recurrent reference, where it is installed (it is no requirement)
    naive = pytest.importorskip("fla.ops.linear_attn.naive")
    (q, k, v), _, tol = case(backend, "identity", 64, 29, lead=(2, 3))
    g = torch.Generator().manual_seed(65)
    S0, z0 = torch.randn(2, 3, 5, 3, generator=g), torch.rand(2, 3, 5, generator=g) + 1
    out, (S, z) = linear_attention(q, k, v, feature_map="identity", causal=True, eps=1e-10,
                                   backend=backend, initial_state=(S0, z0),
                                   output_final_state=True)
    # fla's layout is (B, T, H, d); its z carries a length-1 time axis
    ref, (ref_S, ref_z) = naive.naive_recurrent_linear_attn(
        *(x.float().transpose(1, 2) for x in (q, k, v)), scale=1.0, normalize=True,
        initial_state=(S0, z0[:, None]), output_final_state=True)
    assert rel_err(out, ref.transpose(1, 2)) < max(tol, 1e-5)
    assert rel_err(S, ref_S) < max(tol, 1e-6) and rel_err(z, ref_z[:, 0]) < max(tol, 1e-6)


@pytest.mark.parametrize("feature_map", FEATURE_MAP_NAMES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_non_causal_outputs_attend_over_the_earlier_keys_too(backend, feature_map):
    (q, k, v), phi, tol = case(backend, feature_map, 51, 31)
    options = {"feature_map": phi, "backend": backend}
    _, state = linear_attention(q[..., :1, :], k[..., :19, :], v[..., :19, :],
                                output_final_state=True, **options)
    out = linear_attention(q[..., 19:, :], k[..., 19:, :], v[..., 19:, :],
                           initial_state=state, **options)
    everything = linear_attention(q[..., 19:, :].double(), k.double(), v.double(),
                                  feature_map=phi, backend="quadratic")
    assert rel_err(out, everything) < tol


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_reach_the_initial_state(backend):
    (q, k, v), _, tol = case(backend, "elu+1", 52, 23, lead=(2,))
    g = torch.Generator().manual_seed(53)
    S0 = torch.randn(2, 5, 3, generator=g, dtype=F64)
    z0 = torch.rand(2, 5, generator=g, dtype=F64) + 1
    grads = {}
    for name, dtype in ((backend, q.dtype), ("quadratic", F64)):
        leaves = [x.detach().to(dtype).requires_grad_() for x in (q, k, v, S0, z0)]
        out, (S, z) = linear_attention(*leaves[:3], causal=True, backend=name,
                                       initial_state=leaves[3:], output_final_state=True)
        loss = (out.double() * torch.linspace(-1, 1, out.numel(), dtype=F64).view(out.shape))
        (loss.sum() + S.double().square().sum() + z.double().sum()).backward()
        grads[name] = [x.grad for x in leaves]
    for grad, ref in zip(grads[backend], grads["quadratic"], strict=True):
        assert rel_err(grad, ref) < tol


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("backend", TORCH_BACKENDS)
def test_gradcheck_with_a_state(backend, causal):
    g = torch.Generator().manual_seed(54)
    q, k, v = random_qkv(55, 6, 3, 2, lead=(2,))
    S0, z0 = torch.randn(2, 3, 2, generator=g, dtype=F64), torch.rand(2, 3, dtype=F64) + 1

    def attend(q, k, v, S0, z0):
        out, (S, z) = linear_attention(q, k, v, causal=causal, backend=backend,
                                       initial_state=(S0, z0), output_final_state=True)
        return out, S, z

    inputs = tuple(x.requires_grad_() for x in (q, k, v, S0, z0))
    assert torch.autograd.gradcheck(attend, inputs)


def test_bad_initial_state_is_rejected_by_name():
    q, k, v = random_qkv(56, 8, 4, 3)
    S0, z0 = torch.zeros(2, 3, 4, 3, dtype=F64), torch.zeros(2, 3, 4, dtype=F64)
    with pytest.raises(TypeError, match="initial_state"):
        linear_attention(q, k, v, initial_state=S0)
    with pytest.raises(ValueError, match=r"initial_state\[0\]"):
        linear_attention(q, k, v, initial_state=(S0[..., :2], z0))
    with pytest.raises(ValueError, match=r"initial_state\[1\]"):
        linear_attention(q, k, v, initial_state=(S0, z0[:1, :2, :]))
    with pytest.raises(TypeError, match=r"initial_state\[1\]"):
        linear_attention(q, k, v, initial_state=(S0, "z"))
    # a state shared by the batch broadcasts
    out = linear_attention(q, k, v, initial_state=(S0[0, 0], z0[0, 0]))
    assert torch.equal(out, linear_attention(q, k, v, initial_state=(S0, z0)))


# --- causality -----------------------------------------------------------------------------

@pytest.mark.parametrize("feature_map", FEATURE_MAP_NAMES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_causal_outputs_do_not_see_later_keys_at_default_settings(backend, feature_map):
    # later keys get large norms: with a stabiliser taken over the sequence (FAVOR+'s usual
    # max over the keys) they would reach the earlier outputs through eps
    (q, k, v), phi, tol = case(backend, feature_map, 57, 32, d=16, dv=4, lead=(2,))
    out = linear_attention(q, k, v, feature_map=phi, causal=True, backend=backend)
    changed_k, changed_v = k.clone(), v.clone()
    changed_k[..., 13:, :] *= 4
    if feature_map == "favor":  # keys at the projection's rows: the largest exponents
        changed_k[..., 13:, :] = phi.projection[torch.arange(19) % 12].to(k.dtype)
    changed_v[..., 13:, :] = -changed_v[..., 13:, :] + 1
    again = linear_attention(q, changed_k, changed_v, feature_map=phi, causal=True,
                             backend=backend)
    assert rel_err(again[..., :13, :], out[..., :13, :]) < tol
    assert rel_err(again[..., 13:, :], out[..., 13:, :]) > 1e-2  # the later outputs do change


# --- autocast ------------------------------------------------------------------------------

@pytest.mark.parametrize("causal", [False, True])
def test_autocast_does_not_lower_the_internal_precision(causal):
    q, k, v = random_qkv(58, 70, 16, 8, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = linear_attention(q, k, v, causal=causal)
    assert out.dtype == torch.float32
    assert rel_err(out, explicit(q, k, v, causal=causal)) < 1e-5


# --- packed variable-length sequences ------------------------------------------------------

@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("backend", BACKENDS)
def test_packed_sequences_are_each_attended_to_alone(backend, causal):
    lengths = [7, 0, 13, 1, 20]
    bounds = [0, *itertools.accumulate(lengths)]
    (q, k, v), _, tol = case(backend, "elu+1", 60, bounds[-1], lead=(1, 3))
    g = torch.Generator().manual_seed(61)
    S0 = torch.randn(len(lengths), 3, 5, 3, generator=g, dtype=F64)
    z0 = torch.rand(len(lengths), 3, 5, generator=g, dtype=F64) + 1
    leaves = [x.detach().requires_grad_() for x in (q, k, v, S0, z0)]
    cu_seqlens = torch.tensor(bounds, dtype=torch.int32)
    out, (S, z) = linear_attention(*leaves[:3], causal=causal, backend=backend,
                                   initial_state=leaves[3:], output_final_state=True,
                                   cu_seqlens=cu_seqlens)
    assert out.shape == v.shape and S.shape == S0.shape and z.shape == z0.shape
    (out.double().square().sum() + S.double().sum()).backward()
    for n, (first, stop) in enumerate(itertools.pairwise(bounds)):
        alone = [x.detach().double().requires_grad_() for x in (
            q[..., first:stop, :], k[..., first:stop, :], v[..., first:stop, :],
            S0[n:n + 1], z0[n:n + 1])]
        ref, (ref_S, ref_z) = linear_attention(*alone[:3], causal=causal, backend="quadratic",
                                               initial_state=alone[3:],
                                               output_final_state=True)
        (ref.square().sum() + ref_S.sum()).backward()
        if stop > first:
            assert rel_err(out[..., first:stop, :], ref) < tol
            for x, ref_x in zip(leaves[:3], alone[:3], strict=True):
                assert rel_err(x.grad[..., first:stop, :], ref_x.grad) < tol
        assert rel_err(S[n:n + 1], ref_S) < tol and rel_err(z[n:n + 1], ref_z) < tol
        assert rel_err(leaves[3].grad[n:n + 1], alone[3].grad) < tol


def test_bad_cu_seqlens_are_rejected_by_name():
    q, k, v = random_qkv(62, 10, 4, 3, lead=(1, 2))
    for bad, error in ((torch.tensor([0.0, 10.0]), TypeError), ([0, 10], TypeError),
                       (torch.tensor([0, 4, 3, 10]), ValueError),
                       (torch.tensor([1, 10]), ValueError), (torch.tensor([0, 9]), ValueError),
                       (torch.tensor([[0, 10]]), ValueError), (torch.tensor([0]), ValueError)):
        with pytest.raises(error, match="cu_seqlens"):
            linear_attention(q, k, v, cu_seqlens=bad)
    with pytest.raises(ValueError, match="cu_seqlens"):  # a batch of two is not packed
        linear_attention(*random_qkv(62, 10, 4, 3), cu_seqlens=torch.tensor([0, 10]))


# --- torch.compile -------------------------------------------------------------------------

@pytest.mark.parametrize("causal", [False, True])
def test_torch_compile_traces_one_graph(causal):
    # fullgraph: a graph break would raise. aot_eager traces forward and backward (the
    # custom elu+1 Function included) without inductor's code generation, so it stays cheap
    compiled = torch.compile(linear_attention, fullgraph=True, backend="aot_eager")
    grads = []
    for function in (compiled, linear_attention):
        q, k, v = (x.requires_grad_() for x in random_qkv(63, 75, 8, 5, dtype=torch.float32))
        out = function(q, k, v, causal=causal)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append((out, q.grad, k.grad, v.grad))
    for got, ref in zip(*grads, strict=True):
        assert rel_err(got, ref) < 1e-6
