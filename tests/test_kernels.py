"""Kernels: Gram matrix shapes, closed forms against plain loops, and bad input."""

import math

import numpy as np
import pytest
import torch
from helpers import F64
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelnotes import exp_dot, gaussian, imq, polynomial, squared_distances


def loop_gram(fn, x, y):
    """Reference: evaluate a scalar kernel pair by pair."""
    return torch.tensor([[fn(a, b) for b in y] for a in x], dtype=F64)


@given(n=st.integers(1, 7), m=st.integers(1, 7), d=st.integers(1, 5), seed=st.integers(0, 10**6))
@settings(max_examples=40, deadline=None)
def test_kernels_match_pairwise_loops(n, m, d, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=F64)
    y = torch.randn(m, d, generator=g, dtype=F64)
    cases = [
        (gaussian(x, y, 0.7), lambda a, b: math.exp(-((a - b) ** 2).sum().item() / (2 * 0.49))),
        (exp_dot(x, y), lambda a, b: math.exp(a.dot(b).item() / math.sqrt(d))),
        (exp_dot(x, y, 2.5), lambda a, b: math.exp(a.dot(b).item() / 2.5)),
        (imq(x, y, c=0.5, beta=1.5),
         lambda a, b: (0.25 + ((a - b) ** 2).sum().item()) ** -1.5),
        (polynomial(x, y, b=1.0, degree=3), lambda a, b: (a.dot(b).item() + 1.0) ** 3),
    ]
    for gram, scalar in cases:
        assert gram.shape == (n, m)
        torch.testing.assert_close(gram, loop_gram(scalar, x, y), rtol=1e-12, atol=1e-12)


def test_batched_gram_broadcasts_leading_dims():
    x = torch.randn(2, 3, 5, 4, dtype=F64)
    y = torch.randn(1, 3, 6, 4, dtype=F64)
    gram = gaussian(x, y, 1.0)
    assert gram.shape == (2, 3, 5, 6)
    torch.testing.assert_close(gram[1, 2], gaussian(x[1, 2], y[0, 2], 1.0))


def test_squared_distances_never_negative_and_zero_on_diagonal():
    x = torch.randn(50, 8, dtype=torch.float32) * 1e3
    sq = squared_distances(x, x)
    assert (sq >= 0).all()
    assert sq.diagonal().abs().max() <= 1e-3 * sq.max()


def test_numpy_input_is_accepted():
    x = np.linspace(0, 1, 5)[:, None]
    gram = gaussian(x, x, 0.3)
    assert isinstance(gram, torch.Tensor) and gram.dtype == F64
    assert torch.allclose(gram.diagonal(), torch.ones(5, dtype=F64))


@pytest.mark.parametrize("bandwidth", [0, -1.0, float("nan"), float("inf")])
def test_gaussian_rejects_bad_bandwidth(bandwidth):
    with pytest.raises(ValueError, match="bandwidth"):
        gaussian(torch.zeros(2, 1), torch.zeros(3, 1), bandwidth)


def test_bad_parameters_and_shapes_name_the_argument():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="temperature"):
        exp_dot(x, x, temperature=0.0)
    with pytest.raises(ValueError, match="beta"):
        imq(x, x, c=1.0, beta=-1)
    with pytest.raises(ValueError, match="degree"):
        polynomial(x, x, degree=0)
    with pytest.raises(ValueError, match="b must be finite"):
        polynomial(x, x, b=float("nan"))
    with pytest.raises(ValueError, match="feature dimension"):
        gaussian(torch.zeros(3, 2), torch.zeros(3, 4), 1.0)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., n, d\)"):
        gaussian(torch.zeros(3), torch.zeros(3, 1), 1.0)
    with pytest.raises(ValueError, match="batch dimensions do not broadcast"):
        gaussian(torch.zeros(2, 3, 1), torch.zeros(4, 3, 1), 1.0)
    with pytest.raises(TypeError, match="floating-point"):
        gaussian(torch.zeros(3, 1, dtype=torch.int64), torch.zeros(3, 1), 1.0)
    with pytest.raises(TypeError, match="one dtype"):
        gaussian(torch.zeros(3, 1, dtype=F64), torch.zeros(3, 1), 1.0)
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor"):
        gaussian("points", torch.zeros(3, 1), 1.0)


def test_a_meta_tensor_is_rejected_by_name():
    # meta tensors carry no values: refused as such before any device comparison
    x = torch.zeros(3, 2)
    z = torch.zeros(3, 2, device="meta")
    with pytest.raises(ValueError, match="z is a meta tensor"):
        gaussian(x, z, 1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device (CUDA)")
def test_inputs_on_different_devices_are_rejected_by_name():
    x = torch.zeros(3, 2)
    z = torch.zeros(3, 2, device="cuda")
    with pytest.raises(ValueError, match="z is on cuda"):
        gaussian(x, z, 1.0)
