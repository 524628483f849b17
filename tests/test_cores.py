"""kernelnotes._cores: the unchecked formulas against plain references."""

import pytest
import torch
from helpers import F64

from kernelnotes import _cores


def test_gaussian_scores_are_the_log_gram_up_to_a_row_constant():
    g = torch.Generator().manual_seed(0)
    x, z = torch.randn(4, 3, generator=g, dtype=F64), torch.randn(6, 3, generator=g, dtype=F64)
    scores = _cores.gaussian_scores(x, z, 0.7)
    log_gram = -torch.cdist(x, z) ** 2 / (2 * 0.7**2)
    shift = scores - log_gram
    torch.testing.assert_close(shift, shift[:, :1].expand_as(shift), rtol=0, atol=1e-12)
    assert (scores.amax(-1) == 0).all()


def test_tiny_bandwidth_tends_to_the_nearest_kept_neighbour():
    x = torch.tensor([[0.0], [2.9]], dtype=torch.float32)
    z = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float32)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    scores = _cores.gaussian_scores(x, z, 1e-25, mask)
    out, weights = _cores.kernel_smoother(scores, torch.eye(3), log_space=True, mask=mask)
    assert torch.isfinite(weights).all()
    torch.testing.assert_close(out, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))


@pytest.mark.parametrize("dtype, expected", [
    (torch.float16, torch.float32), (torch.bfloat16, torch.float32),
    (torch.float32, torch.float32), (torch.float64, torch.float64),
])
def test_compute_dtype(dtype, expected):
    assert _cores.compute_dtype(dtype) == expected


def test_kernel_smoother_divides_by_row_sums():
    scores = torch.tensor([[1.0, 3.0], [2.0, 2.0]], dtype=F64)
    out, weights = _cores.kernel_smoother(scores, torch.tensor([[4.0], [8.0]], dtype=F64),
                                          log_space=False)
    torch.testing.assert_close(weights, torch.tensor([[0.25, 0.75], [0.5, 0.5]], dtype=F64))
    torch.testing.assert_close(out, torch.tensor([[7.0], [6.0]], dtype=F64))


def test_quadratic_form_and_yat_gram_by_hand():
    alpha = torch.tensor([1.0, -2.0], dtype=F64)
    K = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=F64)
    assert _cores.quadratic_form(alpha, K).item() == pytest.approx(2 - 2 + 4)
    w, x = torch.tensor([[1.0, 0.0]], dtype=F64), torch.tensor([[0.0, 2.0]], dtype=F64)
    # (w.x + b)^2 / (|x - w|^2 + eps) = (0 + 1)^2 / (5 + 1)
    assert _cores.yat_gram(w, x, 1.0, 1.0).item() == pytest.approx(1 / 6)
