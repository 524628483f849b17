"""Feature maps: elu+1, the protocol and its key scale, FAVOR+ (kernelnotes.linear.feature_maps)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import F64, explicit, random_qkv, rel_err

from kernelnotes import FavorFeatures, linear_attention
from kernelnotes.linear import FEATURE_MAPS, FeatureMap, elu_plus_one


def test_elu_plus_one_does_not_collapse_in_bfloat16():
    x = torch.tensor([-12.0, -8.0, -6.5, 0.5], dtype=torch.bfloat16)
    naive = F.elu(x) + 1  # the trap: 1 + (exp(x) - 1) rounds to exactly 0 in bfloat16
    assert (naive[:3] == 0).all()
    features = elu_plus_one(x)
    assert features.dtype == torch.float32 and (features > 0).all()
    exact = torch.where(x.double() > 0, x.double() + 1, torch.exp(x.double()))
    assert rel_err(features, exact) < 1e-6


def test_elu_plus_one_float32_within_its_stated_error():
    # float32 takes exp(x) as exp2(x log2 e): relative error at most (|x| + 1) 2^-23 against
    # the float64 definition on the same inputs, and never a cancellation (x = -80 still
    # gives its 1.8e-35, where 1 + (exp(x) - 1) gives 0)
    x = torch.cat([torch.linspace(-87, 4, 100_003), torch.tensor([-80.0, -1e-7, 0.0])])
    features = elu_plus_one(x)
    exact = torch.where(x.double() > 0, x.double() + 1, torch.exp(x.double().clamp(max=0)))
    error = (features.double() - exact).abs() / exact
    bound = (x.double().abs() + 1) * 2.0**-23
    assert features.dtype == torch.float32 and (error <= bound).all()
    assert error.max() > 0  # not the float64 path in disguise
    assert features[-3] > 0 and (F.elu(x[-3:-2]) + 1 == 0).all()


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


def test_favor_projection_is_fixed_until_redrawn():
    favor = FavorFeatures(4, 6, generator=torch.Generator().manual_seed(20))
    again = FavorFeatures(4, 6, generator=torch.Generator().manual_seed(20))
    assert torch.equal(favor.projection, again.projection)
    before = favor.projection.clone()
    x = torch.randn(3, 4)
    assert torch.equal(favor(x), favor(x))
    assert favor.redraw(torch.Generator().manual_seed(21)) is favor
    assert not torch.equal(favor.projection, before)


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((0, 4), {}, ValueError, "dim"),
    ((4, 0), {}, ValueError, "num_features"),
    ((2.5, 4), {}, TypeError, "dim"),
    ((True, 4), {}, TypeError, "dim"),
    ((4, 1.0), {}, TypeError, "num_features"),
    ((4, 4), {"orthogonal": "yes"}, TypeError, "orthogonal"),
    ((4, 4), {"generator": 3}, TypeError, "generator"),
])
def test_favor_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        FavorFeatures(*args, **kwargs)


@pytest.mark.parametrize("x, error, match", [
    (torch.randn(3, 5), ValueError, r"feature_map: .* x of shape \(\.\.\., 4\)"),
    (torch.randn(3, 0), ValueError, r"x of shape"),
    (torch.tensor(1.0), ValueError, r"x of shape"),
    (torch.ones(3, 4, dtype=torch.int64), TypeError, "x must have a floating-point dtype"),
    ("x", TypeError, "x must be a torch.Tensor"),
    (torch.empty(3, 4, device="meta"), ValueError, "x is a meta tensor"),
])
def test_favor_refuses_bad_inputs_by_name(x, error, match):
    with pytest.raises(error, match=match):
        FavorFeatures(4, 8)(x)


def test_favor_takes_numpy_inputs_as_tensors():
    favor = FavorFeatures(4, 8, generator=torch.Generator().manual_seed(3))
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(4), dtype=F64)
    torch.testing.assert_close(favor(x.numpy()), favor(x), rtol=0, atol=0)


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


def test_every_map_follows_the_protocol():
    favor = FavorFeatures(4, 8)
    for phi in (*FEATURE_MAPS.values(), favor):
        assert isinstance(phi, FeatureMap)
    x = torch.randn(3, 4, dtype=F64)
    assert torch.equal(FEATURE_MAPS["elu+1"](x, True), elu_plus_one(x))
    assert torch.equal(FEATURE_MAPS["relu"](x, False), torch.relu(x))


class ScaledKeys:
    """elu+1, with every key feature multiplied by a constant it declares."""

    def __init__(self, scale):
        self.scale = scale

    def __call__(self, x, is_query):
        return elu_plus_one(x) * (1.0 if is_query else self.scale)

    def key_scale(self, dtype):
        return self.scale


@pytest.mark.parametrize("causal", [False, True])
def test_a_declared_key_scale_scales_eps_alike(causal):
    # keys scaled by 1e-9 would leave eps = 1e-6 dominating every denominator; declared,
    # eps is scaled alike and the result is elu+1's
    q, k, v = random_qkv(40, 23, 5, 3)
    ref = explicit(q, k, v, causal=causal)
    out = linear_attention(q, k, v, feature_map=ScaledKeys(1e-9), causal=causal)
    assert rel_err(out, ref) < 1e-12
    undeclared = linear_attention(q, k, v, causal=causal,
                                  feature_map=lambda x: elu_plus_one(x) * 1e-9)
    assert rel_err(undeclared, ref) > 1e-3  # what the declaration prevents


def test_favor_key_features_stay_in_range_for_any_key():
    # with d = 128 the exponent bound max |w_r|^2 / 2 is near 90, float32's exp limit
    favor = FavorFeatures(128, 64, generator=torch.Generator().manual_seed(41))
    bound = favor.projection.double().square().sum(-1).amax().item() / 2
    assert bound > 60
    worst = favor.projection[favor.projection.square().sum(-1).argmax()]  # attains the bound
    with torch.no_grad():
        assert favor(worst[None]).max() > math.exp(80)  # unstabilised: sums would overflow
        keys = favor(worst[None], is_query=False)
    assert torch.isfinite(keys).all() and keys.max() <= math.exp(40)
    assert 0 < favor.key_scale(torch.float32) < 1


def test_favor_attention_at_large_head_dims_keeps_the_unbiased_scale():
    # the key shift of d = 128 is about exp(-48); eps follows it, or eps would dominate
    # every denominator. What is left of eps acts through the per-row query stabiliser
    # (about 1e-3 on the first causal rows, which have one or two keys)
    favor = FavorFeatures(128, 64, generator=torch.Generator().manual_seed(42))
    assert favor.key_scale(torch.float32) < 1e-6
    q, k, v = random_qkv(43, 40, 128, 8, lead=(2,), dtype=torch.float32)
    q, k = q * 128 ** -0.25, k * 128 ** -0.25
    for causal in (False, True):
        out = linear_attention(q, k, v, feature_map=favor, causal=causal)
        ref = explicit(q, k, v, phi=favor.double(), causal=causal)  # unstabilised, float64
        assert rel_err(out, ref) < (3e-3 if causal else 1e-5)


def test_elu_plus_one_and_its_gradient_against_the_definition():
    x = torch.tensor([-800.0, -30.0, -1.5, -1e-8, 0.0, 1e-8, 0.7, 50.0, 800.0], dtype=F64,
                     requires_grad=True)
    y = elu_plus_one(x)
    y.backward(torch.linspace(1, 2, 9, dtype=F64))
    exact = torch.where(x > 0, x + 1, torch.exp(x.clamp(max=0))).detach()
    slope = torch.where(x > 0, torch.ones_like(x), torch.exp(x.clamp(max=0))).detach()
    torch.testing.assert_close(y.detach(), exact, rtol=1e-15, atol=0)
    torch.testing.assert_close(x.grad, torch.linspace(1, 2, 9, dtype=F64) * slope,
                               rtol=1e-15, atol=0)
    assert torch.equal(elu_plus_one(torch.tensor([-float("inf"), float("inf")])),
                       torch.tensor([0.0, float("inf")]))


def test_elu_plus_one_slices_large_and_strided_inputs():
    # more elements than one slice of the elementwise loop, read through a transposed view
    g = torch.Generator().manual_seed(47)
    x = (8 * torch.randn(300, 700, generator=g, dtype=F64)).T.requires_grad_()
    y = elu_plus_one(x)
    weight = torch.rand(x.shape, generator=g, dtype=F64)
    (y * weight).sum().backward()
    exact = torch.where(x > 0, x + 1, torch.exp(x.clamp(max=0))).detach()
    assert y.shape == x.shape and torch.equal(y.detach(), exact)
    torch.testing.assert_close(x.grad, weight * exact.clamp(max=1), rtol=1e-15, atol=0)
