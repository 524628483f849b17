"""MLP contributions, the superposition toy model and the seeded training loops."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelnotes import (
    MLP,
    ToyModel,
    angular_gaps,
    feature_importance,
    sparse_features,
    superposition_geometry,
    train_regression,
    train_toy_model,
)

F64 = torch.float64


@given(d=st.integers(1, 5), hidden=st.integers(1, 9), out=st.integers(1, 3),
       activation=st.sampled_from(["relu", "gelu", "tanh"]), seed=st.integers(0, 10**6))
@settings(max_examples=30, deadline=None)
def test_contributions_plus_bias_sum_to_the_output(d, hidden, out, activation, seed):
    g = torch.Generator().manual_seed(seed)
    mlp = MLP(d, hidden, out, activation=activation, generator=g, dtype=F64)
    x = 3 * torch.randn(2, 7, d, generator=g, dtype=F64)
    c = mlp.contributions(x)
    assert c.shape == (2, 7, out, hidden)
    torch.testing.assert_close(c.sum(-1) + mlp.readout.bias, mlp(x), rtol=1e-12, atol=1e-12)
    # Reference: the formula written out with the two weight matrices.
    W1, b1 = mlp.hidden.weight, mlp.hidden.bias
    W2, b2 = mlp.readout.weight, mlp.readout.bias
    s = {"relu": torch.relu, "gelu": torch.nn.functional.gelu, "tanh": torch.tanh}[activation]
    torch.testing.assert_close(mlp(x), s(x @ W1.T + b1) @ W2.T + b2, rtol=1e-12, atol=1e-12)


def test_contributions_are_signed_and_grow_without_bound():
    g = torch.Generator().manual_seed(0)
    mlp = MLP(1, 16, generator=g, dtype=F64)
    c = mlp.contributions(torch.tensor([[1.0], [100.0]], dtype=F64))[:, 0]
    assert (c < 0).any() and (c > 0).any()  # some units push up, others down
    # A ReLU unit is linear on its active side: far inputs give proportionally larger shares.
    assert c[1].abs().max() > 50 * c[0].abs().max()


def test_mlp_is_seeded_and_accepts_numpy():
    a = MLP(3, 4, 2, generator=torch.Generator().manual_seed(5))
    b = MLP(3, 4, 2, generator=torch.Generator().manual_seed(5))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
        assert pa.abs().max() <= 1 / math.sqrt(3)  # within nn.Linear's init bound (fan_in 3 or 4)
    x = np.ones((5, 3), dtype=np.float32)
    assert a(x).shape == (5, 2)


def test_mlp_bad_input():
    with pytest.raises(ValueError, match="hidden_features"):
        MLP(2, 0)
    with pytest.raises(ValueError, match="activation"):
        MLP(2, 3, activation="softmax")
    mlp = MLP(2, 3)
    with pytest.raises(ValueError, match="x must have shape"):
        mlp(torch.ones(4, 3))
    with pytest.raises(TypeError, match="x"):
        mlp(torch.ones(4, 2, dtype=F64))
    with pytest.raises(TypeError, match="x"):
        mlp.contributions(torch.ones(4, 2, dtype=torch.int64))


def test_sparse_features_and_importance():
    g = torch.Generator().manual_seed(0)
    x = sparse_features(20000, 5, 0.9, generator=g)
    assert x.shape == (20000, 5) and (x >= 0).all() and (x < 1).all()
    assert abs((x == 0).float().mean().item() - 0.9) < 0.01
    assert (sparse_features(100, 3, 0.0, generator=g) > 0).all()
    torch.testing.assert_close(feature_importance(4, dtype=F64),
                               torch.tensor([1, 0.9, 0.81, 0.729], dtype=F64))
    for bad, name in ((1.0, "sparsity"), (-0.1, "sparsity")):
        with pytest.raises(ValueError, match=name):
            sparse_features(4, 5, bad)
    with pytest.raises(ValueError, match="n_features"):
        sparse_features(4, 0, 0.5)
    with pytest.raises(ValueError, match="decay"):
        feature_importance(3, decay=0.0)


def test_toy_model_shapes_and_formula():
    model = ToyModel(7, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    assert model.W.shape == (3, 7) and model.b.shape == (7,)
    x = torch.rand(4, 7, dtype=F64)
    assert model.hidden(x).shape == (4, 3)
    torch.testing.assert_close(model(x), torch.relu(x @ model.W.T @ model.W + model.b))
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.rand(4, 5, dtype=F64))


def test_toy_training_is_deterministic_and_learns():
    a, losses = train_toy_model(0.5, steps=300, seed=3)
    b, _ = train_toy_model(0.5, steps=300, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.W, b.W) and torch.equal(a.b, b.b)
    c, _ = train_toy_model(0.5, steps=300, seed=4)
    assert not torch.equal(a.W, c.W)
    assert losses.shape == (300,) and losses.dtype == F64
    assert losses[-50:].mean() < 0.7 * losses[:10].mean()


def test_dense_features_stay_orthogonal_sparse_ones_form_a_pentagon():
    # Elhage et al.'s intro figure, n = 5, m = 2: dense features -> the two most important
    # get orthogonal directions and the rest are dropped; sparse -> all five, 72 deg apart.
    # A larger learning rate than the paper's 1e-3 keeps this test to about a second; the
    # sparse outcome is seed-dependent (some seeds end in a square), seed 0 is a pentagon.
    dense, _ = train_toy_model(0.0, steps=2000, lr=1e-2, seed=0)
    norms, interference = superposition_geometry(dense.W.detach())
    assert (norms[:2] > 0.9).all() and (norms[2:] < 0.35).all()
    assert (interference[:2] < 0.05).all()

    sparse, _ = train_toy_model(0.9, steps=2000, lr=1e-2, seed=0)
    W = sparse.W.detach()
    norms, interference = superposition_geometry(W)
    assert (norms > 0.9).all()
    torch.testing.assert_close(angular_gaps(W), torch.full((5,), 2 * math.pi / 5),
                               rtol=0, atol=0.1)
    assert (interference > 0.3).all()  # every feature now shares its direction


def test_superposition_geometry_by_hand():
    W = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]], dtype=F64)
    norms, interference = superposition_geometry(W)
    torch.testing.assert_close(norms, torch.tensor([1.0, 1.0, 2.0], dtype=F64))
    # feature 0 and 2 point the same way: each sees the other's full squared length
    torch.testing.assert_close(interference, torch.tensor([4.0, 0.0, 1.0], dtype=F64))
    with pytest.raises(ValueError, match="W must have shape"):
        superposition_geometry(torch.ones(3))


def test_train_regression_fits_and_is_deterministic():
    x = torch.linspace(-2, 2, 41, dtype=F64)[:, None]
    y = torch.sin(2 * x[:, 0])

    def fit(**kwargs):
        mlp = MLP(1, 24, generator=torch.Generator().manual_seed(0), dtype=F64)
        return mlp, train_regression(mlp, x, y, steps=400, lr=2e-2, **kwargs)

    m1, losses = fit()
    m2, _ = fit()
    for p1, p2 in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(p1, p2)
    assert losses[-1] < 0.1 * losses[0]
    mb1, mb_losses = fit(batch_size=16, seed=2)
    mb2, _ = fit(batch_size=16, seed=2)
    assert torch.equal(mb1.readout.weight, mb2.readout.weight)
    assert not torch.equal(mb1.readout.weight, m1.readout.weight)
    assert mb_losses[-50:].mean() < 0.2 * mb_losses[:10].mean()


def test_train_regression_bad_input():
    mlp = MLP(2, 3, 2)
    x, y = torch.rand(8, 2), torch.rand(8, 2)
    with pytest.raises(ValueError, match="x and y"):
        train_regression(mlp, x, y[:5])
    with pytest.raises(ValueError, match="y must have shape"):
        train_regression(mlp, x, y[:, 0])
    with pytest.raises(TypeError, match="y"):
        train_regression(mlp, x, y.double())
    with pytest.raises(ValueError, match="steps"):
        train_regression(mlp, x, y, steps=0)
    with pytest.raises(ValueError, match="lr"):
        train_regression(mlp, x, y, lr=-1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        train_regression(mlp, x, y, weight_decay=-1.0)
    with pytest.raises(TypeError, match="model"):
        train_regression(lambda t: t, x, y)
    with pytest.raises(TypeError, match="seed"):
        train_regression(mlp, x, y, seed=1.5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_trainers_refuse_16_bit_dtypes_by_name(dtype):
    # without float32 master weights a 16-bit run silently ends in NaN: refuse it
    mlp = MLP(2, 3, 1, dtype=dtype)
    x, y = torch.rand(8, 2, dtype=dtype), torch.rand(8, 1, dtype=dtype)
    with pytest.raises(TypeError, match=str(dtype)):
        train_regression(mlp, x, y, steps=2)
    with pytest.raises(TypeError, match=r"dtype is torch\.(b?float16)"):
        train_toy_model(0.5, steps=2, dtype=dtype)


def test_angular_gaps():
    angles = torch.tensor([0.3, 2.0, -1.0, 3.0], dtype=F64)
    W = torch.stack([angles.cos(), angles.sin()]) * torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=F64)
    gaps = angular_gaps(W)
    torch.testing.assert_close(gaps, torch.tensor([1.3, 1.7, 1.0, 2 * math.pi - 4.0], dtype=F64))
    assert gaps.sum().item() == pytest.approx(2 * math.pi)
    with pytest.raises(ValueError, match="W must have shape"):
        angular_gaps(torch.ones(3, 5))
