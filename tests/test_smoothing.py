"""Nadaraya-Watson: weights form a partition of unity, stable in log space, bad input."""

import math

import pytest
import torch
from helpers import F64
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelnotes import exp_dot, gaussian, imq, nadaraya_watson


def loop_nadaraya_watson(xq, xt, yt, scalar_kernel):
    """Reference: the estimator written as two sums, one query at a time."""
    out = []
    for x in xq:
        w = torch.tensor([scalar_kernel(x, xj) for xj in xt], dtype=F64)
        out.append((w[:, None] * yt).sum(0) / w.sum())
    return torch.stack(out)


@given(n=st.integers(1, 6), m=st.integers(1, 9), d=st.integers(1, 4), p=st.integers(1, 3),
       bandwidth=st.floats(0.2, 5.0), seed=st.integers(0, 10**6))
@settings(max_examples=40, deadline=None)
def test_matches_loop_and_weights_are_a_partition_of_unity(n, m, d, p, bandwidth, seed):
    g = torch.Generator().manual_seed(seed)
    xq, xt = torch.randn(n, d, generator=g, dtype=F64), torch.randn(m, d, generator=g, dtype=F64)
    yt = torch.randn(m, p, generator=g, dtype=F64)
    pred, w = nadaraya_watson(xq, xt, yt, gaussian, bandwidth=bandwidth)
    ref = loop_nadaraya_watson(
        xq, xt, yt, lambda a, b: math.exp(-((a - b) ** 2).sum().item() / (2 * bandwidth**2)))
    torch.testing.assert_close(pred, ref, rtol=1e-10, atol=1e-12)
    assert (w >= 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(n, dtype=F64), rtol=0, atol=1e-12)


def test_log_space_normalisation_survives_tiny_bandwidth_and_huge_scores():
    xt = torch.linspace(0, 1, 11, dtype=F64)[:, None]
    yt = torch.arange(11, dtype=F64)[:, None]
    # exp(-d^2 / (2 h^2)) underflows to 0 for every training point at this bandwidth ...
    assert gaussian(torch.tensor([[0.33]], dtype=F64), xt, 1e-4).sum() == 0
    # ... yet the log-space weights are a clean one-hot on the nearest point.
    pred, _ = nadaraya_watson(torch.tensor([[0.33]], dtype=F64), xt, yt, gaussian, bandwidth=1e-4)
    assert pred.item() == pytest.approx(3.0)
    q = torch.full((1, 4), 100.0)  # q.k/2 = 20000: exp overflows float32, softmax does not
    pred, w = nadaraya_watson(q, torch.eye(4) * 100, torch.eye(4), exp_dot)
    assert torch.isfinite(pred).all() and torch.isfinite(w).all()


def test_scalar_targets_and_plain_callable_kernel():
    xt = torch.tensor([[0.0], [1.0], [2.0]], dtype=F64)
    yt = torch.tensor([[1.0], [2.0], [3.0]], dtype=F64)
    pred, _ = nadaraya_watson(xt, xt, yt, lambda a, b: imq(a, b, c=1.0))
    assert pred.shape == (3, 1)
    assert pred[1, 0].item() == pytest.approx(2.0)  # symmetric neighbours average to the centre
    add_axis = r"y_train must have shape \(\.\.\., m, p\).*\[\.\.\., None\]"
    with pytest.raises(ValueError, match=add_axis):
        nadaraya_watson(xt, xt, yt[:, 0], lambda a, b: imq(a, b, c=1.0))


def test_shared_target_matrix_with_batched_inputs():
    # a (m, p) target matrix shared by a batch of inputs is read as (m, p), never as a batch
    g = torch.Generator().manual_seed(1)
    xq, xt = torch.randn(3, 4, 2, generator=g, dtype=F64), torch.randn(3, 3, 2, generator=g,
                                                                       dtype=F64)
    yt = torch.randn(3, 3, generator=g, dtype=F64)
    pred, w = nadaraya_watson(xq, xt, yt, gaussian, bandwidth=1.0)
    assert pred.shape == (3, 4, 3)
    torch.testing.assert_close(pred, w @ yt, rtol=0, atol=1e-12)


def test_kernel_returning_the_wrong_shape_is_named():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="kernel must return"):
        nadaraya_watson(x, x, torch.zeros(3, 2), lambda a, b: torch.ones(3))
    with pytest.raises(ValueError, match="kernel must return"):
        nadaraya_watson(x, x, torch.zeros(3, 2), lambda a, b: 1.0)


def test_mask_removes_points():
    xt = torch.randn(5, 2, dtype=F64)
    yt = torch.randn(5, 3, dtype=F64)
    mask = torch.ones(5, 5, dtype=torch.bool).tril()
    pred, w = nadaraya_watson(xt, xt, yt, gaussian, mask=mask, bandwidth=1.0)
    assert (w.triu(1) == 0).all()
    torch.testing.assert_close(pred[0], yt[0])


def test_bad_input():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="one target per training point"):
        nadaraya_watson(x, x, torch.zeros(4, 1), gaussian, bandwidth=1.0)
    with pytest.raises(TypeError, match="kernel must be callable"):
        nadaraya_watson(x, x, torch.zeros(3, 1), "gaussian")
    with pytest.raises(ValueError, match="negative values"):
        nadaraya_watson(x, x, torch.zeros(3, 1), lambda a, b: -torch.ones(3, 3))
    with pytest.raises(ValueError, match="sum to 0"):
        nadaraya_watson(x, x, torch.zeros(3, 1), lambda a, b: torch.zeros(3, 3))
    with pytest.raises(ValueError, match="mask removes every training point"):
        nadaraya_watson(x, x, torch.zeros(3, 1), gaussian, bandwidth=1.0,
                        mask=torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask must be boolean"):
        nadaraya_watson(x, x, torch.zeros(3, 1), gaussian, bandwidth=1.0, mask=torch.ones(3, 3))
    with pytest.raises(ValueError, match="bandwidth"):
        nadaraya_watson(x, x, torch.zeros(3, 1), gaussian, bandwidth=-2.0)


def test_bad_shapes_and_dtypes_name_the_argument():
    x = torch.zeros(3, 2, dtype=F64)
    y = torch.zeros(3, 1, dtype=F64)
    with pytest.raises(ValueError, match="x_query and x_train"):
        nadaraya_watson(torch.zeros(3, 4, dtype=F64), x, y, gaussian, bandwidth=1.0)
    with pytest.raises(ValueError, match="x_query must have shape"):
        nadaraya_watson(torch.zeros(3, dtype=F64), x, y, gaussian, bandwidth=1.0)
    with pytest.raises(ValueError, match="y_train must have shape"):
        nadaraya_watson(x, x, torch.tensor(1.0, dtype=F64), gaussian, bandwidth=1.0)
    with pytest.raises(TypeError, match=r"y_train=torch\.float32"):
        nadaraya_watson(x, x, torch.zeros(3, 1), gaussian, bandwidth=1.0)
    # batched inputs with targets of the wrong batch shape
    xb = torch.zeros(2, 3, 2, dtype=F64)
    with pytest.raises(ValueError, match="y_train"):
        nadaraya_watson(xb, xb, torch.zeros(4, 3, 1, dtype=F64), gaussian, bandwidth=1.0)
    with pytest.raises(ValueError, match="mask must have shape"):
        nadaraya_watson(x, x, y, gaussian, bandwidth=1.0,
                        mask=torch.ones(2, 3, dtype=torch.bool))


def test_mask_broadcasts_over_queries_and_batches():
    g = torch.Generator().manual_seed(0)
    xq = torch.randn(2, 4, 2, generator=g, dtype=F64)
    xt = torch.randn(2, 5, 2, generator=g, dtype=F64)
    yt = torch.randn(2, 5, 3, generator=g, dtype=F64)
    keep = torch.tensor([True, False, True, True, False])
    pred, w = nadaraya_watson(xq, xt, yt, gaussian, mask=keep, bandwidth=1.0)
    ref, _ = nadaraya_watson(xq, xt[:, keep], yt[:, keep], gaussian, bandwidth=1.0)
    assert (w[..., ~keep] == 0).all()
    torch.testing.assert_close(pred, ref, rtol=0, atol=1e-12)


def test_targets_with_batch_axes_of_their_own():
    # one set of points, several target sets: the kernel's (n, m) Gram matrix is shared
    g = torch.Generator().manual_seed(2)
    xq, xt = torch.randn(4, 2, generator=g, dtype=F64), torch.randn(3, 2, generator=g, dtype=F64)
    yt = torch.randn(5, 3, 2, generator=g, dtype=F64)
    pred, w = nadaraya_watson(xq, xt, yt, gaussian, bandwidth=0.9)
    single, w0 = nadaraya_watson(xq, xt, yt[1], gaussian, bandwidth=0.9)
    assert pred.shape == (5, 4, 2) and w.shape == (5, 4, 3)
    torch.testing.assert_close(pred[1], single, rtol=0, atol=1e-12)
    torch.testing.assert_close(w[3], w0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_16_bit_inputs_are_smoothed_in_float32(dtype):
    # q . k / 2 reaches 80000, past float16's 65504; the weights are computed in float32
    g = torch.Generator().manual_seed(4)
    q = (400 * torch.nn.functional.normalize(torch.randn(3, 4, generator=g), dim=-1)).to(dtype)
    k = (400 * torch.nn.functional.normalize(torch.randn(5, 4, generator=g), dim=-1)).to(dtype)
    v = torch.randn(5, 2, generator=g).to(dtype)
    pred, w = nadaraya_watson(q, k, v, exp_dot)
    ref, _ = nadaraya_watson(q.double(), k.double(), v.double(), exp_dot)
    assert pred.dtype == dtype and w.dtype == dtype and torch.isfinite(pred).all()
    assert ((pred.double() - ref).norm() / ref.norm()).item() <= torch.finfo(dtype).eps
