"""Softmax attention = Nadaraya-Watson with the exp-dot kernel = PyTorch's SDPA."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelnotes import attention_as_nadaraya_watson, softmax_attention

F64 = torch.float64


def random_qkv(seed, batch, heads, lq, lk, d, dv, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    shape = (batch, heads)
    return (torch.randn(*shape, lq, d, generator=g, dtype=dtype),
            torch.randn(*shape, lk, d, generator=g, dtype=dtype),
            torch.randn(*shape, lk, dv, generator=g, dtype=dtype))


sizes = dict(seed=st.integers(0, 10**6), batch=st.integers(1, 3), heads=st.integers(1, 3),
             lq=st.integers(1, 9), lk=st.integers(1, 9), d=st.integers(1, 8),
             dv=st.integers(1, 5), causal=st.booleans(),
             scale=st.one_of(st.none(), st.floats(0.05, 3.0)))


@given(**sizes)
@settings(max_examples=60, deadline=None)
def test_attention_is_nadaraya_watson_and_sdpa(seed, batch, heads, lq, lk, d, dv, causal, scale):
    q, k, v = random_qkv(seed, batch, heads, lq, lk, d, dv)
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
    q, k, v = random_qkv(seed, 2, 2, 4, lk, 3, 2)
    perm = torch.randperm(lk, generator=torch.Generator().manual_seed(seed))
    out, w = softmax_attention(q, k, v)
    out_p, w_p = softmax_attention(q, k[..., perm, :], v[..., perm, :])
    torch.testing.assert_close(out, out_p, rtol=0, atol=1e-12)
    torch.testing.assert_close(w[..., perm], w_p, rtol=0, atol=1e-12)


def test_float32_matches_float64_reference():
    q, k, v = random_qkv(0, 2, 4, 33, 33, 16, 8)
    out32, _ = attention_as_nadaraya_watson(q.float(), k.float(), v.float(), causal=True)
    out64, _ = softmax_attention(q, k, v, causal=True)
    rel = (out32.double() - out64).norm() / out64.norm()
    assert rel < 1e-6


def test_numpy_inputs():
    q, k, v = (t.numpy() for t in random_qkv(1, 1, 1, 3, 4, 2, 2))
    out, w = softmax_attention(q, k, v)
    assert out.shape == (1, 1, 3, 2) and w.shape == (1, 1, 3, 4)


def test_bad_input_names_the_argument():
    q, k, v = random_qkv(0, 1, 2, 4, 5, 3, 2)
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
