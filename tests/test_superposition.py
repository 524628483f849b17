"""kernelnotes.superposition: the toy model, its inputs and the geometry of its features."""

import math

import pytest
import torch
from helpers import F64

from kernelnotes import (
    ToyModel,
    angular_gaps,
    feature_importance,
    sparse_features,
    superposition_geometry,
)


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


def test_superposition_geometry_by_hand():
    W = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]], dtype=F64)
    norms, interference = superposition_geometry(W)
    torch.testing.assert_close(norms, torch.tensor([1.0, 1.0, 2.0], dtype=F64))
    # feature 0 and 2 point the same way: each sees the other's full squared length
    torch.testing.assert_close(interference, torch.tensor([4.0, 0.0, 1.0], dtype=F64))
    with pytest.raises(ValueError, match="W must have shape"):
        superposition_geometry(torch.ones(3))


def test_angular_gaps():
    angles = torch.tensor([0.3, 2.0, -1.0, 3.0], dtype=F64)
    W = torch.stack([angles.cos(), angles.sin()]) * torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=F64)
    gaps = angular_gaps(W)
    torch.testing.assert_close(gaps, torch.tensor([1.3, 1.7, 1.0, 2 * math.pi - 4.0], dtype=F64))
    assert gaps.sum().item() == pytest.approx(2 * math.pi)
    with pytest.raises(ValueError, match="W must have shape"):
        angular_gaps(torch.ones(3, 5))


def test_bad_types_and_overflowing_decay_are_named():
    with pytest.raises(ValueError, match="decay=1e\\+30 overflows"):
        feature_importance(5, decay=1e30, dtype=torch.float32)
    with pytest.raises(TypeError, match="generator"):
        sparse_features(2, 3, 0.5, generator=3)
    with pytest.raises(TypeError, match="dtype"):
        ToyModel(3, 2, dtype=torch.int64)
