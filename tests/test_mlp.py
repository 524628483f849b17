"""kernelnotes.mlp: the MLP's per-unit contributions, seeding, bad input."""

import math

import numpy as np
import pytest
import torch
from helpers import F64
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelnotes import (
    MLP,
)


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


def test_activation_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="activation must be a string"):
        MLP(2, 3, activation=3)
    with pytest.raises(ValueError, match="activation must be one of"):
        MLP(2, 3, activation="swish")
