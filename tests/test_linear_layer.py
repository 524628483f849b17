"""The multi-head layer (kernelnotes.linear.layer): shapes, causality, the function it wraps,
FAVOR+ as a submodule, decoding with the carried state, bad arguments."""

import pytest
import torch
from helpers import F64

from kernelnotes import FavorFeatures, LinearAttention, linear_attention


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


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((2.5, 1), {}, TypeError, "embed_dim must be a positive integer"),
    ((8, True), {}, TypeError, "num_heads"),
    ((8, 2), {"causal": "yes"}, TypeError, "causal"),
    ((8, 2), {"backend": 3}, TypeError, "backend"),
])
def test_module_refuses_wrong_types(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        LinearAttention(*args, **kwargs)


@pytest.mark.parametrize("x, error, match", [
    (torch.ones(2, 3, 8, dtype=torch.int64), TypeError, "x must have a floating-point dtype"),
    (torch.randn(2, 3, 8, dtype=F64), TypeError, "x="),
    (torch.empty(2, 3, 8, device="meta"), ValueError, "x is a meta tensor"),
    (torch.randn(8), ValueError, r"x must have shape \(batch, seq, 8\)"),
    ("x", TypeError, "x must be a torch.Tensor"),
])
def test_module_refuses_bad_inputs_by_name(x, error, match):
    with pytest.raises(error, match=match):
        LinearAttention(8, 2)(x)
    with pytest.raises(error, match=match.replace("x", "context")):
        LinearAttention(8, 2)(torch.randn(2, 3, 8), x)


def test_module_takes_numpy_inputs_as_tensors():
    torch.manual_seed(31)
    layer = LinearAttention(8, 2)
    x, context = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    torch.testing.assert_close(layer(x.numpy(), context.numpy()), layer(x, context),
                               rtol=0, atol=0)


@pytest.mark.parametrize("feature_map", ["elu+1", "favor"])
def test_causal_layer_decodes_token_by_token_with_its_state(feature_map):
    torch.manual_seed(45)
    if feature_map == "favor":
        feature_map = FavorFeatures(6, 16, generator=torch.Generator().manual_seed(46))
    layer = LinearAttention(18, 3, causal=True, feature_map=feature_map).double()
    x = torch.randn(2, 29, 18, dtype=F64)
    full, (S, z) = layer(x, return_state=True)
    m = 6 if isinstance(feature_map, str) else 16
    assert S.shape == (2, 3, m, 6) and z.shape == (2, 3, m) and S.dtype == F64
    prefill, state = layer(x[:, :11], return_state=True)
    steps = [prefill]
    for t in range(11, 29):  # one token at a time, carrying the state
        y, state = layer(x[:, t:t + 1], state=state, return_state=True)
        steps.append(y)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=0, atol=1e-12)
    torch.testing.assert_close(state, (S, z), rtol=1e-12, atol=1e-12)
