"""kernelnotes._validation: one error policy (TypeError for a type, ValueError for a value)."""

import numpy as np
import pytest
import torch

from kernelnotes import _validation
from kernelnotes._validation import (
    as_qkv,
    as_tensor,
    check_index,
    check_int_at_least,
    check_nonnegative,
    check_positive,
    check_positive_int,
    check_probability,
)


def test_all_lists_every_public_helper():
    public = {name for name, value in vars(_validation).items()
              if callable(value) and not name.startswith("_")
              and getattr(value, "__module__", None) == _validation.__name__}
    assert public == set(_validation.__all__)


@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_positive_int_accepts_integers(value):
    assert check_positive_int(value, "n") == int(value)
    assert type(check_positive_int(value, "n")) is int


@pytest.mark.parametrize("value, error", [
    (0, ValueError), (-2, ValueError), (1.0, TypeError), (2.5, TypeError), (True, TypeError),
    ("3", TypeError), (None, TypeError),
])
def test_positive_int_policy(value, error):
    with pytest.raises(error, match="steps must be a positive integer"):
        check_positive_int(value, "steps")


@pytest.mark.parametrize("value, error", [
    (1, ValueError), (-4, ValueError), (4.0, TypeError), (True, TypeError), ("4", TypeError),
])
def test_int_at_least_policy(value, error):
    assert check_int_at_least(np.int64(4), "seq_len", 4) == 4
    with pytest.raises(error, match="seq_len must be an integer >= 4"):
        check_int_at_least(value, "seq_len", 4)


@pytest.mark.parametrize("value, error", [
    (3, ValueError), (-1, ValueError), (1.0, TypeError), (True, TypeError), ("0", TypeError),
    (None, TypeError),
])
def test_index_policy(value, error):
    assert check_index(np.int64(2), "step", 3) == 2
    with pytest.raises(error, match="step must"):
        check_index(value, "step", 3)


def test_real_checks_name_the_argument():
    assert check_positive(2, "lr") == 2.0
    assert check_nonnegative(0, "lam") == 0.0
    assert check_probability(0.5, "sparsity") == 0.5
    for call, error in ((lambda: check_positive(0.0, "lr"), ValueError),
                        (lambda: check_positive(float("nan"), "lr"), ValueError),
                        (lambda: check_positive("1", "lr"), TypeError),
                        (lambda: check_nonnegative(-1e-9, "lr"), ValueError),
                        (lambda: check_probability(1.0, "lr"), ValueError),
                        (lambda: check_probability(None, "lr"), TypeError)):
        with pytest.raises(error, match="lr"):
            call()


def test_as_tensor_refuses_what_it_cannot_compute_on():
    with pytest.raises(ValueError, match="x is a meta tensor"):
        as_tensor(torch.zeros(2, device="meta"), "x")
    with pytest.raises(ValueError, match="x must be a rectangular array"):
        as_tensor([[1.0], [1.0, 2.0]], "x")
    with pytest.raises(TypeError, match="x must hold real numbers"):
        as_tensor(np.array(["a"]), "x")
    with pytest.raises(TypeError, match="x must have a floating-point dtype"):
        as_tensor(torch.zeros(2, dtype=torch.complex64), "x")
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor"):
        as_tensor(True, "x")


def test_as_qkv_checks_shapes_and_allows_empty_sequences():
    q, k, v = torch.zeros(2, 3, 4), torch.zeros(2, 0, 4), torch.zeros(2, 0, 5)
    assert [t.shape for t in as_qkv(q, k, v)] == [q.shape, k.shape, v.shape]
    with pytest.raises(ValueError, match="at least one feature"):
        as_qkv(torch.zeros(3, 0), torch.zeros(3, 0), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="k and v must have the same sequence length"):
        as_qkv(q, torch.zeros(2, 1, 4), v)
