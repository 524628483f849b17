"""kernelnotes.attention: softmax attention = Nadaraya-Watson with the exp-dot kernel = SDPA,
softmax attention as a Gaussian smoother, and the helpers around them.

Identity 1: for unit-length queries and keys, softmax weights equal Gaussian
Nadaraya-Watson weights with bandwidth sqrt(t), t = 1/scale.
Identity 2: for any queries and keys, the Gaussian smoother re-weighted by exp(|k|^2 / (2t))
per key is softmax attention.
Tolerances: 1e-12 in float64 and 1e-5 in float32 (inputs of order 1, |scores| below ~20);
the key-norm correction adds terms |k|^2 / 2t that reach ~150 here, so its float32
tolerance is scaled by that size (rounding of the log-weights).
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import F64, random_qkv, rel_err
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelnotes import (
    attention_as_nadaraya_watson,
    attention_contributions,
    gaussian_attention,
    l2_normalize,
    qk_normalize,
    softmax_attention,
)

TOL = {torch.float64: 1e-12, torch.float32: 1e-5}


sizes = dict(seed=st.integers(0, 10**6), batch=st.integers(1, 3), heads=st.integers(1, 3),
             lq=st.integers(1, 9), lk=st.integers(1, 9), d=st.integers(1, 8),
             dv=st.integers(1, 5), causal=st.booleans(),
             scale=st.one_of(st.none(), st.floats(0.05, 3.0)))


@given(**sizes)
@settings(max_examples=60, deadline=None)
def test_attention_is_nadaraya_watson_and_sdpa(seed, batch, heads, lq, lk, d, dv, causal, scale):
    q, k, v = random_qkv(seed, lq, d, dv, lead=(batch, heads), lk=lk)
    out, w = softmax_attention(q, k, v, causal=causal, scale=scale)
    out_nw, w_nw = attention_as_nadaraya_watson(q, k, v, causal=causal, scale=scale)
    sdpa = F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
    torch.testing.assert_close(out, out_nw, rtol=0, atol=1e-12)
    torch.testing.assert_close(w, w_nw, rtol=0, atol=1e-12)
    torch.testing.assert_close(out, sdpa, rtol=0, atol=1e-12)
    # Weights are a convex combination: non-negative rows summing to one.
    assert (w >= 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)), rtol=0, atol=1e-12)
    if causal:
        assert (w.triu(1) == 0).all()


@given(seed=st.integers(0, 10**6), lk=st.integers(2, 9))
@settings(max_examples=30, deadline=None)
def test_permuting_keys_and_values_together_changes_nothing(seed, lk):
    q, k, v = random_qkv(seed, 4, 3, 2, lead=(2, 2), lk=lk)
    perm = torch.randperm(lk, generator=torch.Generator().manual_seed(seed))
    out, w = softmax_attention(q, k, v)
    out_p, w_p = softmax_attention(q, k[..., perm, :], v[..., perm, :])
    torch.testing.assert_close(out, out_p, rtol=0, atol=1e-12)
    torch.testing.assert_close(w[..., perm], w_p, rtol=0, atol=1e-12)


def test_float32_matches_float64_reference():
    q, k, v = random_qkv(0, 33, 16, 8, lead=(2, 4), lk=33)
    out32, _ = attention_as_nadaraya_watson(q.float(), k.float(), v.float(), causal=True)
    out64, _ = softmax_attention(q, k, v, causal=True)
    assert rel_err(out32, out64) < 1e-6


def test_numpy_inputs():
    q, k, v = (t.numpy() for t in random_qkv(1, 3, 2, 2, lead=(1, 1), lk=4))
    out, w = softmax_attention(q, k, v)
    assert out.shape == (1, 1, 3, 2) and w.shape == (1, 1, 3, 4)


def test_bad_input_names_the_argument():
    q, k, v = random_qkv(0, 4, 3, 2, lead=(1, 2), lk=5)
    with pytest.raises(ValueError, match="q and k must have the same feature dimension"):
        softmax_attention(q, k[..., :2], v)
    with pytest.raises(ValueError, match="k and v must have the same sequence length"):
        attention_as_nadaraya_watson(q, k, v[..., :4, :])
    with pytest.raises(ValueError, match="scale"):
        softmax_attention(q, k, v, scale=0.0)
    with pytest.raises(ValueError, match="scale"):
        attention_as_nadaraya_watson(q, k, v, scale=float("nan"))
    with pytest.raises(ValueError, match=r"v must have shape"):
        softmax_attention(q, k, torch.zeros(5, dtype=F64))
    with pytest.raises(ValueError, match="batch dimensions do not broadcast"):
        softmax_attention(q, k.expand(3, 2, 5, 3).clone(), v.expand(2, 2, 5, 2).clone())
    with pytest.raises(TypeError, match="one dtype"):
        softmax_attention(q.float(), k, v)


# Softmax attention as a Gaussian smoother

@st.composite
def qkv_case(draw):
    """Random (q, k, v) of a random shape: 0-2 batch dims, odd and even sizes."""
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    L, S = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    E, Ev = draw(st.integers(1, 7)), draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*batch, L, E, generator=g, dtype=torch.float64)
    # keys of very different lengths, so the key-norm factor matters
    k = torch.randn(*batch, S, E, generator=g, dtype=torch.float64)
    k = k * torch.empty(*batch, S, 1, dtype=torch.float64).uniform_(0.2, 2.5, generator=g)
    v = torch.randn(*batch, S, Ev, generator=g, dtype=torch.float64)
    scale = draw(st.sampled_from([None, 0.3, 1.0, 2.5]))
    causal = draw(st.booleans())
    return q, k, v, scale, causal


def _reference_gaussian(q, k, v, scale, causal, key_norm_correction=False):
    """Gaussian Nadaraya-Watson written out with explicit differences, in float64."""
    q, k, v = q.double(), k.double(), v.double()
    t = math.sqrt(q.shape[-1]) if scale is None else 1 / scale
    diff = q[..., :, None, :] - k[..., None, :, :]
    log_w = -(diff**2).sum(-1) / (2 * t)
    if key_norm_correction:
        log_w = log_w + (k**2).sum(-1)[..., None, :] / (2 * t)
    if causal:
        keep = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
        log_w = log_w.masked_fill(~keep, float("-inf"))
    w = torch.exp(log_w - log_w.amax(-1, keepdim=True))
    w = w / w.sum(-1, keepdim=True)
    return w @ v, w


@settings(max_examples=40, deadline=None)
@given(case=qkv_case(), dtype=st.sampled_from([torch.float64, torch.float32]))
def test_unit_length_softmax_equals_gaussian_smoother(case, dtype):
    q, k, v, scale, causal = case
    q, k = qk_normalize(q, k)
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    out_s, w_s = softmax_attention(q, k, v, causal=causal, scale=scale)
    out_g, w_g = gaussian_attention(q, k, v, causal=causal, scale=scale)
    assert out_g.dtype == dtype and w_g.shape == w_s.shape
    torch.testing.assert_close(w_g, w_s, rtol=0, atol=TOL[dtype])
    torch.testing.assert_close(out_g, out_s, rtol=0, atol=TOL[dtype])


@settings(max_examples=40, deadline=None)
@given(case=qkv_case(), dtype=st.sampled_from([torch.float64, torch.float32]))
def test_key_norm_correction_recovers_softmax_for_any_keys(case, dtype):
    q, k, v, scale, causal = case
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    out_s, w_s = softmax_attention(q, k, v, causal=causal, scale=scale)
    out_g, w_g = gaussian_attention(q, k, v, causal=causal, scale=scale,
                                    key_norm_correction=True)
    t = math.sqrt(q.shape[-1]) if scale is None else 1 / scale
    size = (q * q).sum(-1).amax().item() + (k * k).sum(-1).amax().item()
    tol = TOL[dtype] * max(1.0, size / t)
    torch.testing.assert_close(w_g, w_s, rtol=0, atol=tol)
    out_tol = tol * max(1.0, v.abs().amax().item())
    torch.testing.assert_close(out_g, out_s, rtol=0, atol=out_tol)


@settings(max_examples=40, deadline=None)
@given(case=qkv_case(), correction=st.booleans())
def test_matches_written_out_gaussian_reference(case, correction):
    q, k, v, scale, causal = case
    out, w = gaussian_attention(q, k, v, causal=causal, scale=scale,
                                key_norm_correction=correction)
    out_ref, w_ref = _reference_gaussian(q, k, v, scale, causal, correction)
    torch.testing.assert_close(w, w_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(out, out_ref, rtol=0, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(case=qkv_case())
def test_log_weight_ratio_is_the_key_factor(case):
    """log(softmax / Gaussian) = |k_j|^2 / (2t) + a constant per query (the query factor)."""
    q, k, v, scale, causal = case
    t = math.sqrt(q.shape[-1]) if scale is None else 1 / scale
    _, w_s = softmax_attention(q, k, v, causal=causal, scale=scale)
    _, w_g = gaussian_attention(q, k, v, causal=causal, scale=scale)
    key_term = (k * k).sum(-1)[..., None, :] / (2 * t)
    visible = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool)
    if causal:
        visible = visible.tril()
    gap = (w_s.log() - w_g.log() - key_term).masked_fill(~visible, 0)
    first = gap[..., :1]  # key 0 is visible to every query
    spread = (gap - first).masked_fill(~visible, 0).abs().amax()
    assert spread < 1e-10


def test_without_normalization_the_weights_favour_long_keys():
    q = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    # same direction as q, different lengths: the Gaussian prefers the key nearest q,
    # softmax the longest one
    k = torch.tensor([[1.0, 0.0], [3.0, 0.0]], dtype=torch.float64)
    v = torch.eye(2, dtype=torch.float64)
    _, w_s = softmax_attention(q, k, v, scale=1.0)
    _, w_g = gaussian_attention(q, k, v, scale=1.0)
    assert w_g[0, 0] > w_g[0, 1] and w_s[0, 1] > w_s[0, 0]
    # ratio of the two keys' weights: exp(q.k/t) gives e^{3-1}; the Gaussian e^{-(4-0)/2}
    assert w_s[0, 1] / w_s[0, 0] == pytest.approx(math.exp(2.0), rel=1e-12)
    assert w_g[0, 1] / w_g[0, 0] == pytest.approx(math.exp(-2.0), rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(case=qkv_case())
def test_gaussian_smoother_ignores_a_common_shift(case):
    """A Gaussian kernel depends on q - k only; softmax attention does not."""
    q, k, v, scale, causal = case
    shift = torch.linspace(-1.0, 2.0, q.shape[-1], dtype=torch.float64)
    _, w = gaussian_attention(q, k, v, causal=causal, scale=scale)
    _, w2 = gaussian_attention(q + shift, k + shift, v, causal=causal, scale=scale)
    torch.testing.assert_close(w2, w, rtol=0, atol=1e-10)


def test_large_keys_do_not_overflow_with_the_correction():
    q = torch.zeros(1, 3, dtype=torch.float32)
    k = torch.tensor([[30.0, 0, 0], [0, 31.0, 0]], dtype=torch.float32)  # |k|^2/2 > 88
    v = torch.eye(2, dtype=torch.float32)
    _, w = gaussian_attention(q, k, v, scale=1.0, key_norm_correction=True)
    assert torch.isfinite(w).all()
    torch.testing.assert_close(w, softmax_attention(q, k, v, scale=1.0)[1])


def test_accepts_numpy_and_defaults_scale_to_one_over_sqrt_dim():
    rng = np.random.default_rng(0)
    q, k, v = rng.normal(size=(4, 3)), rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    out, w = gaussian_attention(q, k, v, key_norm_correction=True)
    _, w_ref = softmax_attention(q, k, v, scale=1 / math.sqrt(3))
    torch.testing.assert_close(w, w_ref, rtol=0, atol=1e-12)
    assert isinstance(out, torch.Tensor) and out.shape == (4, 2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"scale": 0.0}, ValueError, "scale"),
        ({"scale": -1.0}, ValueError, "scale"),
        ({"k": np.ones((5, 4))}, ValueError, "q and k"),
        ({"v": np.ones((4, 2))}, ValueError, "k and v"),
        ({"q": np.ones(3)}, ValueError, "q must have shape"),
        ({"q": "query"}, TypeError, "q must be"),
        ({"v": np.ones((5, 2), dtype=np.float32)}, TypeError, "dtype"),
    ],
)
def test_gaussian_attention_rejects_bad_input(kwargs, error, match):
    args = {"q": np.ones((2, 3)), "k": np.ones((5, 3)), "v": np.ones((5, 2))}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        gaussian_attention(**args)


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       seed=st.integers(0, 2**31 - 1), dtype=st.sampled_from([torch.float64, torch.float32]))
def test_l2_normalize_gives_unit_vectors_in_the_same_direction(shape, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype) + 0.1
    dim = -1 if len(shape) == 1 else 0
    y = l2_normalize(x, dim=dim)
    norms = torch.linalg.vector_norm(y, dim=dim)
    torch.testing.assert_close(norms, torch.ones_like(norms), rtol=0, atol=TOL[dtype] * 10)
    # y is a positive multiple of x along the normalised axis
    ratio = y / x
    torch.testing.assert_close(ratio, ratio.mean(dim, keepdim=True).expand_as(ratio),
                               rtol=TOL[dtype] * 10, atol=0)
    assert (ratio > 0).all()


def test_l2_normalize_keeps_zero_vectors_finite_and_accepts_numpy():
    y = l2_normalize(np.array([[0.0, 0.0], [3.0, 4.0]]))
    torch.testing.assert_close(y, torch.tensor([[0.0, 0.0], [0.6, 0.8]], dtype=torch.float64))


def test_qk_normalize_normalizes_both_along_features():
    q, k = qk_normalize(np.array([[2.0, 0.0]]), np.array([[0.0, -5.0], [3.0, 4.0]]))
    torch.testing.assert_close(q, torch.tensor([[1.0, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(k, torch.tensor([[0.0, -1.0], [0.6, 0.8]], dtype=torch.float64))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"eps": 0.0}, ValueError, "eps"),
        ({"dim": 2}, ValueError, "dim"),
        ({"dim": 1.0}, TypeError, "dim"),
        ({"x": np.ones(3, dtype=np.int64)}, TypeError, "x must have a floating"),
    ],
)
def test_l2_normalize_rejects_bad_input(kwargs, error, match):
    args = {"x": np.ones((2, 3))}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        l2_normalize(**args)


@settings(max_examples=30, deadline=None)
@given(case=qkv_case())
def test_contributions_add_up_to_the_output(case):
    q, k, v, scale, causal = case
    out, w = softmax_attention(q, k, v, causal=causal, scale=scale)
    parts = attention_contributions(w, v)
    assert parts.shape == (*w.shape, v.shape[-1])
    torch.testing.assert_close(parts.sum(-2), out, rtol=0, atol=1e-12)
    # one contribution is exactly alpha_ij v_j
    torch.testing.assert_close(parts[..., -1, 0, :], w[..., -1, 0, None] * v[..., 0, :])


def test_contributions_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="weights and v"):
        attention_contributions(np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="weights must have shape"):
        attention_contributions(np.ones(3), np.ones((3, 2)))


def test_one_call_converts_its_inputs_once(monkeypatch):
    import kernelnotes._validation as validation

    names = []
    convert = validation.as_tensor

    def counting(value, name, **kwargs):
        names.append(name)
        return convert(value, name, **kwargs)

    monkeypatch.setattr(validation, "as_tensor", counting)
    q = torch.randn(2, 5, 3, dtype=torch.float64)
    for key_norm_correction in (False, True):
        names.clear()
        gaussian_attention(q, q, q, causal=True, key_norm_correction=key_norm_correction)
        assert names == ["q", "k", "v"]


# Low precision: scores and softmax in float32, results rounded once to the input dtype

LOW = (torch.float16, torch.bfloat16)


def _long_keys(seed, norm, dtype):
    """Queries and keys of length ``norm`` (so |q.k| reaches norm^2), values of order 1."""
    q, k, v = random_qkv(seed, 13, 16, 5, lead=(2,), lk=11)
    q = norm * q / q.norm(dim=-1, keepdim=True)
    k = norm * k / k.norm(dim=-1, keepdim=True)
    return q.to(dtype), k.to(dtype), v.to(dtype)


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("norm", [1.0, 16.0, 256.0])
@pytest.mark.parametrize("causal", [False, True])
def test_low_precision_is_finite_and_as_accurate_as_sdpa(dtype, norm, causal):
    # at norm 256, |q.k| / sqrt(16) passes float16's 65504
    q, k, v = _long_keys(int(norm), norm, dtype)
    reference = F.scaled_dot_product_attention(q.double(), k.double(), v.double(),
                                               is_causal=causal)
    sdpa_error = rel_err(F.scaled_dot_product_attention(q, k, v, is_causal=causal), reference)
    # one rounding of the output to the dtype's precision, or SDPA's own error
    tolerance = max(2 * sdpa_error, torch.finfo(dtype).eps)
    for name, fn in (
        ("softmax_attention", softmax_attention),
        ("attention_as_nadaraya_watson", attention_as_nadaraya_watson),
        ("gaussian_attention(key_norm_correction=True)",
         lambda q, k, v, causal: gaussian_attention(q, k, v, causal=causal,
                                                    key_norm_correction=True)),
    ):
        out, weights = fn(q, k, v, causal=causal)
        assert out.dtype == dtype and weights.dtype == dtype, name
        assert torch.isfinite(out).all() and torch.isfinite(weights).all(), name
        assert rel_err(out, reference) <= tolerance, (name, rel_err(out, reference), tolerance)


@pytest.mark.parametrize("dtype", LOW)
def test_low_precision_gaussian_smoother_matches_its_float64_self(dtype):
    q, k, v = _long_keys(5, 1.0, dtype)
    out, _ = gaussian_attention(q, k, v)
    reference, _ = gaussian_attention(q.double(), k.double(), v.double())
    assert rel_err(out, reference) <= torch.finfo(dtype).eps
