"""The Yat kernel and YatLayer: closed form, PSD and the two identities, the layer's
contributions, RKHS norm and gradients, and bad input."""

import math

import numpy as np
import pytest
import torch
from helpers import F64
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call

from kernelnotes import YatLayer, imq, is_psd, loewner_gap, min_eigenvalue, rkhs_norm
from kernelnotes.kernels import yat as yat_from_kernels
from kernelnotes.yat import MIN_EPS, yat


def points(seed, n, d, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, d, generator=g, dtype=F64)


def test_yat_is_defined_once_and_reexported():
    assert yat is yat_from_kernels


@given(n=st.integers(1, 6), m=st.integers(1, 6), d=st.integers(1, 4), seed=st.integers(0, 10**6),
       b=st.floats(0, 3), eps=st.floats(1e-3, 5))
@settings(max_examples=40, deadline=None)
def test_yat_matches_pairwise_loop(n, m, d, seed, b, eps):
    w, x = points(seed, n, d), points(seed + 1, m, d)
    expected = torch.tensor(
        [[(wi.dot(xj).item() + b) ** 2 / (((xj - wi) ** 2).sum().item() + eps) for xj in x]
         for wi in w], dtype=F64)
    gram = yat(w, x, b, eps)
    assert gram.shape == (n, m)
    torch.testing.assert_close(gram, expected, rtol=1e-12, atol=1e-12)


def test_yat_batched_and_numpy():
    w = torch.randn(2, 4, 3, dtype=F64)
    x = torch.randn(1, 5, 3, dtype=F64)
    gram = yat(w, x, 0.5, 0.1)
    assert gram.shape == (2, 4, 5)
    torch.testing.assert_close(gram[1], yat(w[1], x[0], 0.5, 0.1))
    a = np.linspace(-1, 1, 4)[:, None]
    assert yat(a, a).dtype == F64


@given(n=st.integers(2, 25), d=st.integers(1, 6), seed=st.integers(0, 10**6),
       b=st.floats(0, 2), eps=st.floats(1e-2, 2), scale=st.floats(0.1, 3))
@settings(max_examples=40, deadline=None)
def test_yat_gram_is_symmetric_and_psd_for_nonnegative_b(n, d, seed, b, eps, scale):
    x = points(seed, n, d, scale)
    K = yat(x, x, b, eps)
    # Entries where w.x + b nearly cancels carry little relative precision: compare
    # against the matrix's scale, not entry by entry.
    torch.testing.assert_close(K, K.mT, rtol=0, atol=1e-13 * K.abs().max().item())
    assert is_psd(K)


def test_negative_b_can_be_indefinite():
    # Two opposite points: w.x + b vanishes on the diagonal for b = -|x|^2 but not off it.
    x = torch.tensor([[1.0], [-1.0]], dtype=F64)
    K = yat(x, x, -1.0, 1.0, require_psd=False)
    assert min_eigenvalue(K) < -0.1
    assert not is_psd(K)


@given(n=st.integers(2, 20), d=st.integers(1, 5), seed=st.integers(0, 10**6),
       b=st.floats(0.05, 2), eps=st.floats(1e-2, 2))
@settings(max_examples=40, deadline=None)
def test_loewner_dominance_over_scaled_imq(n, d, seed, b, eps):
    x = points(seed, n, d)
    K_yat = yat(x, x, b, eps)
    K_imq = b * b * imq(x, x, c=math.sqrt(eps), beta=1.0)
    tol = 1e-12 * K_yat.abs().max().item() * n
    assert loewner_gap(K_yat, K_imq).item() >= -tol


@given(d=st.integers(1, 5), seed=st.integers(0, 10**6), b=st.floats(-2, 2),
       h=st.floats(0.1, 2), eps=st.floats(1e-2, 2))
@settings(max_examples=40, deadline=None)
def test_second_difference_in_b_is_the_imq(d, seed, b, h, eps):
    w, x = points(seed, 5, d), points(seed + 1, 7, d)
    k = [yat(w, x, b + s * h, eps, require_psd=False) for s in (1, 0, -1)]
    second = (k[0] - 2 * k[1] + k[2]) / (2 * h * h)
    torch.testing.assert_close(second, imq(w, x, c=math.sqrt(eps), beta=1.0),
                               rtol=1e-8, atol=1e-8)


def test_b_zero_sections_vanish_at_origin():
    x = points(3, 6, 2)
    zero = torch.zeros(1, 2, dtype=F64)
    assert (yat(zero, x, 0.0, 0.5) == 0).all()
    assert (yat(zero, x, 0.3, 0.5) > 0).all()


def test_yat_bad_parameters_name_the_argument():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="b must be >= 0"):
        yat(x, x, -0.5, 1.0)
    with pytest.raises(ValueError, match="eps"):
        yat(x, x, 1.0, 0.0)
    with pytest.raises(ValueError, match="eps"):
        yat(x, x, 1.0, -1.0, require_psd=False)
    with pytest.raises(ValueError, match="b must be finite"):
        yat(x, x, float("nan"), 1.0)
    with pytest.raises(ValueError, match="b must be a scalar"):
        yat(x, x, torch.ones(3), 1.0)
    with pytest.raises(ValueError, match="w and x must have the same feature dimension"):
        yat(torch.zeros(3, 2), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"w must have shape"):
        yat(torch.zeros(3), torch.zeros(3, 1))


def tiny_layer(dtype=F64, **kwargs):
    return YatLayer(3, 2, 5, generator=torch.Generator().manual_seed(0), dtype=dtype, **kwargs)


def test_layer_is_the_kernel_expansion():
    layer = tiny_layer(b=0.7, eps=0.3)
    x = points(1, 9, 3)
    with torch.no_grad():
        K = yat(x, layer.centres, layer.b, layer.eps)
        expected = K @ layer.alpha.mT
        torch.testing.assert_close(layer(x), expected)
        torch.testing.assert_close(layer.b, torch.tensor(0.7, dtype=F64))
        torch.testing.assert_close(layer.eps, torch.tensor(0.3, dtype=F64))


def test_contributions_sum_to_output_for_any_leading_shape():
    layer = tiny_layer()
    x = points(2, 12, 3).reshape(2, 2, 3, 3)
    with torch.no_grad():
        parts = layer.contributions(x)
        out = layer(x)
    assert parts.shape == (2, 2, 3, 2, 5)
    assert out.shape == (2, 2, 3, 2)
    torch.testing.assert_close(parts.sum(-1), out, rtol=1e-12, atol=1e-12)
    assert layer(x[0, 0, 0]).shape == (2,)


def test_layer_rkhs_norm_by_hand():
    layer = tiny_layer(b=0.5, eps=0.2)
    with torch.no_grad():
        w, a = layer.centres, layer.alpha
        by_hand = []
        for o in range(2):
            total = 0.0
            for i in range(5):
                for j in range(5):
                    kij = (w[i].dot(w[j]) + 0.5) ** 2 / (((w[i] - w[j]) ** 2).sum() + 0.2)
                    total += (a[o, i] * a[o, j] * kij).item()
            by_hand.append(math.sqrt(total))
        norms = layer.rkhs_norm()
    torch.testing.assert_close(norms, torch.tensor(by_hand, dtype=F64), rtol=1e-10, atol=0)
    torch.testing.assert_close(layer.rkhs_norm(squared=True), norms**2)
    torch.testing.assert_close(norms, rkhs_norm(layer.alpha, layer.gram()))


def test_gradcheck_through_every_parameter():
    layer = tiny_layer(b=0.8, eps=0.5)
    names = [name for name, _ in layer.named_parameters()]
    assert names == ["centres", "alpha", "raw_b", "raw_eps"]
    params = tuple(p.detach().clone().requires_grad_(True) for p in layer.parameters())
    x = points(4, 4, 3).requires_grad_(True)

    def f(x, *p):
        return functional_call(layer, dict(zip(names, p, strict=True)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params))

    class SquaredNorm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self):
            return self.layer.rkhs_norm(squared=True)

    def g(*p):
        return functional_call(SquaredNorm(), {f"layer.{n}": v for n, v in zip(names, p,
                                                                                 strict=True)}, ())

    assert torch.autograd.gradcheck(g, params)


def test_parameters_stay_in_range_after_hostile_updates():
    layer = tiny_layer(b=0.1, eps=0.01)
    with torch.no_grad():
        layer.raw_b.fill_(-200.0)
        layer.raw_eps.fill_(-200.0)
    assert layer.b.item() >= 0
    assert layer.eps.item() >= MIN_EPS
    assert torch.isfinite(layer(points(0, 4, 3))).all()


def test_fixed_b_zero_and_fixed_eps_are_buffers():
    layer = tiny_layer(b=0.0, eps=0.5, learn_b=False, learn_eps=False)
    assert [name for name, _ in layer.named_parameters()] == ["centres", "alpha"]
    assert layer.b.item() == 0 and layer.eps.item() == 0.5
    with torch.no_grad():
        assert (layer(torch.zeros(1, 3, dtype=F64)) == 0).all()


def test_training_reduces_loss_deterministically():
    def run():
        torch.manual_seed(0)
        x = torch.linspace(-2, 2, 40)[:, None]
        y = torch.sin(2 * x)
        layer = YatLayer(1, 1, 8, centres=torch.linspace(-2, 2, 8)[:, None],
                         generator=torch.Generator().manual_seed(1))
        opt = torch.optim.Adam(layer.parameters(), lr=0.05)
        losses = []
        for _ in range(100):
            opt.zero_grad()
            loss = ((layer(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    first, second = run(), run()
    assert first == second
    assert first[-1] < 0.1 * first[0]


def test_layer_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="b must be >= 0"):
        YatLayer(2, 1, 3, b=-0.1)
    with pytest.raises(ValueError, match="learn_b=False"):
        YatLayer(2, 1, 3, b=0.0)
    with pytest.raises(ValueError, match="eps"):
        YatLayer(2, 1, 3, eps=0.0)
    with pytest.raises(ValueError, match="MIN_EPS"):
        YatLayer(2, 1, 3, eps=MIN_EPS / 2)
    with pytest.raises(ValueError, match="n_centres"):
        YatLayer(2, 1, 0)
    with pytest.raises(TypeError, match="in_features"):
        YatLayer(2.5, 1, 3)
    with pytest.raises(ValueError, match="centres must have shape"):
        YatLayer(2, 1, 3, centres=torch.zeros(4, 2))
    layer = YatLayer(2, 1, 3)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 2\)"):
        layer(torch.zeros(5, 3))
    with pytest.raises(TypeError, match="one dtype"):
        layer(torch.zeros(5, 2, dtype=F64))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.zeros(5, 2, dtype=torch.int64))


def test_training_path_never_reads_tensor_values_on_the_host(monkeypatch):
    # .item() and bool(tensor) wait for the device; the forward pass and the RKHS penalty
    # must not call them (on a GPU they would stall every step)
    layer = YatLayer(3, 2, 5, generator=torch.Generator().manual_seed(0), dtype=F64)
    x = torch.randn(4, 3, dtype=F64)

    def forbidden(*args, **kwargs):
        raise AssertionError("host synchronisation on the training path")

    monkeypatch.setattr(torch.Tensor, "item", forbidden)
    monkeypatch.setattr(torch.Tensor, "__bool__", forbidden)
    loss = layer(x).square().mean() + 1e-3 * layer.rkhs_norm(squared=True).sum()
    loss.backward()
    monkeypatch.undo()
    assert layer.centres.grad is not None and torch.isfinite(layer.centres.grad).all()


def test_b_whose_square_overflows_the_dtype_is_refused():
    with pytest.raises(ValueError, match=r"b=1e\+30 is too large for torch\.float32"):
        YatLayer(2, 1, 3, b=1e30, dtype=torch.float32)
    YatLayer(2, 1, 3, b=1e30, dtype=F64)  # representable in float64
