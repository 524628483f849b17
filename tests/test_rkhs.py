"""RKHS helpers: Gram matrices, PSD checks with a scaled tolerance, the RKHS norm, kernel
ridge regression by the representer theorem, the Loewner gap, and bad input."""

import math

import numpy as np
import pytest
import torch
from helpers import F64
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelnotes import (
    exp_dot,
    gaussian,
    gram,
    imq,
    is_psd,
    kernel_ridge,
    loewner_gap,
    min_eigenvalue,
    psd_tolerance,
    rkhs_norm,
)
from kernelnotes.yat import yat


def points(seed, n, d):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


def test_gram_square_is_exactly_symmetric_and_rectangular_passes_through():
    x, y = points(0, 7, 3), points(1, 4, 3)
    K = gram(yat, x, b=0.5, eps=0.2)
    assert torch.equal(K, K.mT)
    torch.testing.assert_close(K, yat(x, x, 0.5, 0.2))
    torch.testing.assert_close(gram(gaussian, x, y, bandwidth=0.4), gaussian(x, y, 0.4))


def test_gram_of_an_asymmetric_score_is_rejected():
    x, w_q, w_k = points(0, 5, 2), points(1, 2, 2), points(2, 2, 2)
    with pytest.raises(ValueError, match="symmetric"):
        gram(lambda a, b: exp_dot(a @ w_q, b @ w_k), x)
    symmetric = gram(lambda a, b: exp_dot(a @ w_q, b @ w_q), x)
    assert torch.equal(symmetric, symmetric.mT)


@given(n=st.integers(1, 12), seed=st.integers(0, 10**6))
@settings(max_examples=30, deadline=None)
def test_eigenvalue_helpers_match_numpy(n, seed):
    a = points(seed, n, n)
    K = a @ a.mT - 0.5 * torch.eye(n, dtype=F64)
    expected = np.linalg.eigvalsh(K.numpy())
    assert math.isclose(min_eigenvalue(K).item(), expected[0], rel_tol=1e-9, abs_tol=1e-12)
    tol = n * np.finfo(np.float64).eps * np.abs(expected).max()
    assert math.isclose(psd_tolerance(K).item(), tol, rel_tol=1e-9)
    assert is_psd(K) == (expected[0] >= -tol)


def test_is_psd_tolerance_scales_with_dtype_and_size():
    # A rank-one matrix has exact zero eigenvalues that rounding pushes slightly negative.
    v = points(3, 40, 1)
    K64 = v @ v.mT
    assert min_eigenvalue(K64).item() > -psd_tolerance(K64).item()
    assert is_psd(K64)
    K32 = K64.float()
    assert psd_tolerance(K32) > 1e6 * psd_tolerance(K64)
    assert is_psd(K32)
    # A genuine negative eigenvalue far above the tolerance is caught in both dtypes.
    K_bad = K64 - 1e-3 * K64.abs().max() * torch.eye(40, dtype=F64)
    assert not is_psd(K_bad) and not is_psd(K_bad.float())
    assert is_psd(K_bad, tol=1.0)


def test_batched_checks():
    x = torch.randn(3, 6, 2, dtype=F64)
    K = gaussian(x, x, 0.8)
    assert min_eigenvalue(K).shape == (3,)
    result = is_psd(K)
    assert isinstance(result, torch.Tensor) and result.dtype == torch.bool and result.all()
    single = is_psd(K[0])
    assert isinstance(single, torch.Tensor) and single.dtype == torch.bool and single.dim() == 0


def test_rkhs_norm_by_hand():
    K = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.25], [0.0, 0.25, 3.0]], dtype=F64)
    alpha = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    # 2*1 + 1*4 + 3*0.25 + 2*(0.5*1*-2) + 2*(0.25*-2*0.5) = 6.75 - 2 - 0.5
    assert rkhs_norm(alpha, K, squared=True).item() == pytest.approx(4.25, abs=1e-14)
    assert rkhs_norm(alpha, K).item() == pytest.approx(math.sqrt(4.25), abs=1e-14)
    many = torch.stack([alpha, 2 * alpha])
    torch.testing.assert_close(rkhs_norm(many, K),
                               torch.tensor([1.0, 2.0], dtype=F64) * math.sqrt(4.25))


def test_reproducing_property_gives_the_norm():
    # <f, f> = sum_i alpha_i f(x_i) because f(x_i) = <f, k(., x_i)>.
    x = points(5, 9, 2)
    alpha = points(6, 9, 1)[:, 0]
    K = gaussian(x, x, 0.7)
    f_at_x = K @ alpha
    assert math.isclose(rkhs_norm(alpha, K, squared=True).item(), alpha.dot(f_at_x).item(),
                        rel_tol=1e-12)


@given(n=st.integers(2, 15), d=st.integers(1, 3), seed=st.integers(0, 10**6),
       lam=st.floats(1e-3, 10))
@settings(max_examples=30, deadline=None)
def test_kernel_ridge_solves_the_normal_equations(n, d, seed, lam):
    x = points(seed, n, d)
    y = torch.sin(x.sum(-1))
    fit = kernel_ridge(x, y, gaussian, lam, bandwidth=0.9)
    K = gaussian(x, x, 0.9)
    torch.testing.assert_close((K + lam * torch.eye(n, dtype=F64)) @ fit.alpha, y,
                               rtol=1e-9, atol=1e-9)
    # The training residual is lam * alpha, the first-order condition of the ridge loss.
    torch.testing.assert_close(y - fit(x), lam * fit.alpha, rtol=1e-8, atol=1e-8)


def test_kernel_ridge_sections_sum_to_prediction_and_norm_matches():
    x = torch.linspace(-2, 2, 11, dtype=F64)[:, None]
    y = torch.cos(2 * x[:, 0])
    fit = kernel_ridge(x, y, yat, 1e-3, b=1.0, eps=0.5)
    grid = torch.linspace(-3, 3, 50, dtype=F64)[:, None]
    parts = fit.sections(grid)
    assert parts.shape == (50, 11)
    torch.testing.assert_close(parts.sum(-1), fit(grid), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(parts[:, 3], fit.alpha[3] * yat(grid, x[3:4], 1.0, 0.5)[:, 0])
    assert torch.equal(fit.centres, x)
    torch.testing.assert_close(fit.norm(), rkhs_norm(fit.alpha, yat(x, x, 1.0, 0.5)))


def test_kernel_ridge_vector_targets_and_numpy_input():
    x = np.linspace(0, 1, 8)[:, None]
    y = np.stack([np.sin(3 * x[:, 0]), x[:, 0] ** 2], axis=1)
    fit = kernel_ridge(x, y, imq, 1e-2, c=0.5)
    grid = torch.linspace(0, 1, 5, dtype=F64)[:, None]
    assert fit(grid).shape == (5, 2)
    parts = fit.sections(grid)
    assert parts.shape == (5, 2, 8)
    torch.testing.assert_close(parts.sum(-1), fit(grid), rtol=1e-12, atol=1e-12)
    assert fit.norm().shape == (2,)
    single = kernel_ridge(x, y[:, 1], imq, 1e-2, c=0.5)
    torch.testing.assert_close(single(grid), fit(grid)[:, 1])


def test_float32_input_is_solved_in_float64():
    x = torch.linspace(-1, 1, 6)[:, None]
    fit = kernel_ridge(x, x[:, 0] ** 2, gaussian, 0.0, bandwidth=0.5)
    assert fit.alpha.dtype == F64
    torch.testing.assert_close(fit(x), (x[:, 0] ** 2).double(), rtol=1e-8, atol=1e-8)


def test_yat_at_b_zero_cannot_fit_a_value_at_the_origin():
    x = torch.linspace(-1, 1, 9, dtype=F64)[:, None]  # contains 0
    y = torch.ones(9, dtype=F64)
    origin = torch.zeros(1, 1, dtype=F64)
    fit0 = kernel_ridge(x, y, yat, 1e-4, b=0.0, eps=0.1)
    fit1 = kernel_ridge(x, y, yat, 1e-4, b=1.0, eps=0.1)
    assert fit0(origin).item() == 0.0
    assert fit1(origin).item() == pytest.approx(1.0, abs=1e-2)


def test_loewner_gap():
    x = points(2, 10, 3)
    K = gaussian(x, x, 1.0)
    assert loewner_gap(K, 0.5 * K).item() >= 0
    assert loewner_gap(0.5 * K, K).item() < 0
    torch.testing.assert_close(loewner_gap(K, torch.zeros_like(K)), min_eigenvalue(K))


def test_bad_input_names_the_argument():
    K = torch.eye(3, dtype=F64)
    with pytest.raises(ValueError, match="K must be square"):
        min_eigenvalue(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="K must be symmetric"):
        is_psd(torch.tensor([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="non-finite"):
        is_psd(torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="tol"):
        is_psd(K, tol=-1.0)
    with pytest.raises(ValueError, match="K_big and K_small must have the same shape"):
        loewner_gap(K, torch.eye(2, dtype=F64))
    with pytest.raises(ValueError, match="alpha must have one coefficient per point"):
        rkhs_norm(torch.ones(2, dtype=F64), K)
    with pytest.raises(ValueError, match="K must be square"):
        rkhs_norm(torch.ones(3, dtype=F64), torch.ones(3, 2, dtype=F64))
    x = points(0, 5, 1)
    with pytest.raises(ValueError, match="lam must be a finite number >= 0"):
        kernel_ridge(x, x[:, 0], gaussian, -0.1, bandwidth=1.0)
    with pytest.raises(ValueError, match=r"y must have shape \(n,\)"):
        kernel_ridge(x, torch.ones(4, dtype=F64), gaussian, 0.1, bandwidth=1.0)
    with pytest.raises(ValueError, match=r"x must have shape \(n, d\)"):
        kernel_ridge(x[:, 0], x[:, 0], gaussian, 0.1, bandwidth=1.0)
    with pytest.raises(TypeError, match="kernel must be callable"):
        kernel_ridge(x, x[:, 0], "gaussian", 0.1)
    with pytest.raises(ValueError, match="not positive definite"):
        kernel_ridge(torch.zeros(3, 1, dtype=F64), torch.ones(3, dtype=F64), gaussian, 0.0,
                     bandwidth=1.0)
    fit = kernel_ridge(x, x[:, 0], gaussian, 0.1, bandwidth=1.0)
    with pytest.raises(ValueError, match="x_new must have 1 features"):
        fit(torch.zeros(4, 2, dtype=F64))
    with pytest.raises(ValueError, match=r"x_new must have shape"):
        fit.sections(torch.zeros(4, dtype=F64))
