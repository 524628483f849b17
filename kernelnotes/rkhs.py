"""Reproducing kernel Hilbert spaces in practice: Gram matrices, PSD checks, RKHS norms,
and kernel ridge regression by the representer theorem.

A function in the RKHS of a kernel ``k`` that is a finite sum of kernel sections,
``f = sum_i alpha_i k(., x_i)``, has squared norm ``alpha^T K alpha`` with
``K[i, j] = k(x_i, x_j)``. Everything here is a few lines of linear algebra on that fact.
Eigenvalues and solves run in float64 whatever the input dtype.
"""

from __future__ import annotations

import math

import torch

from . import _cores
from ._validation import as_tensor, check_min_dims, check_nonnegative

__all__ = [
    "KernelRidge",
    "gram",
    "is_psd",
    "kernel_ridge",
    "loewner_gap",
    "min_eigenvalue",
    "psd_tolerance",
    "rkhs_norm",
]

F64 = torch.float64


def _square_symmetric(matrix, name: str) -> torch.Tensor:
    """``matrix`` as a float64 ``(..., n, n)`` tensor, symmetrised after checking it is
    symmetric up to rounding (relative ``sqrt(machine eps)`` of its own dtype)."""
    matrix = as_tensor(matrix, name)
    check_min_dims(matrix, name, 2, "(..., n, n)")
    if matrix.shape[-1] != matrix.shape[-2]:
        raise ValueError(f"{name} must be square, got shape {tuple(matrix.shape)}")
    if matrix.shape[-1] == 0 or matrix.numel() == 0:
        raise ValueError(f"{name} must be at least 1 x 1, got shape {tuple(matrix.shape)}")
    if not torch.isfinite(matrix).all():
        raise ValueError(f"{name} has non-finite entries")
    tol = math.sqrt(torch.finfo(matrix.dtype).eps) * matrix.abs().max().clamp_min(1e-300)
    matrix = matrix.to(F64)
    if (matrix - matrix.mT).abs().max() > tol:
        raise ValueError(
            f"{name} must be symmetric, the Gram matrix of a symmetric kernel; an "
            f"asymmetric score (such as exp(q . k) with different query and key maps) has "
            f"no RKHS until it is symmetrised"
        )
    return (matrix + matrix.mT) / 2


def gram(kernel, x, z=None, **params) -> torch.Tensor:
    """The Gram matrix ``K[i, j] = kernel(x_i, z_j)`` of any pairwise kernel.

    Parameters
    ----------
    kernel : callable ``kernel(x, z, **params)`` in the package's pairwise convention,
        such as :func:`kernelnotes.kernels.gaussian` or :func:`kernelnotes.kernels.yat`.
    x : ``(..., n, d)`` points.
    z : ``(..., m, d)`` points, or None for the square Gram matrix of ``x`` with itself.
        The square matrix is checked to be symmetric (up to rounding) and returned exactly
        symmetric.
    **params : the kernel's parameters.
    """
    if not callable(kernel):
        raise TypeError(f"kernel must be callable, got {type(kernel).__name__}")
    x = as_tensor(x, "x")
    if z is not None:
        return kernel(x, as_tensor(z, "z", like=x), **params)
    if x.dim() >= 2 and x.shape[-2] == 0:
        raise ValueError(f"x must hold at least one point, got shape {tuple(x.shape)}")
    matrix = kernel(x, x, **params)
    if not isinstance(matrix, torch.Tensor):
        raise TypeError(f"kernel must return a tensor, got {type(matrix).__name__}")
    return _square_symmetric(matrix, "the kernel's Gram matrix").to(matrix.dtype)


def _eigenvalues(matrix, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Ascending float64 eigenvalues of ``matrix`` and the rounding allowance for them."""
    original = as_tensor(matrix, name)
    eigenvalues = torch.linalg.eigvalsh(_square_symmetric(original, name))
    n = eigenvalues.shape[-1]
    return eigenvalues, n * torch.finfo(original.dtype).eps * eigenvalues.abs().amax(-1)


def min_eigenvalue(K) -> torch.Tensor:
    """Smallest eigenvalue of a symmetric ``(..., n, n)`` matrix, in float64, shape ``(...)``.

    A kernel is positive semi-definite exactly when every Gram matrix it builds has no
    negative eigenvalue; computed ones can be negative at rounding level, see :func:`is_psd`.
    """
    return _eigenvalues(K, "K")[0][..., 0]


def psd_tolerance(K) -> torch.Tensor:
    """Rounding allowance for the eigenvalues of ``K``: ``n * eps_dtype * max |eigenvalue|``.

    ``eps_dtype`` is the machine epsilon of ``K``'s own dtype (float32 entries carry
    float32 rounding even though the eigenvalues are computed in float64). Shape ``(...)``.
    """
    return _eigenvalues(K, "K")[1]


def is_psd(K, tol=None) -> torch.Tensor:
    """Whether a symmetric matrix is positive semi-definite up to ``tol``.

    ``K`` counts as PSD when its smallest eigenvalue is at least ``-tol``. The default
    ``tol`` is :func:`psd_tolerance`, scaled to the matrix's size, dtype and magnitude.
    Returns a boolean tensor of shape ``(...)``, like :func:`min_eigenvalue`: 0-d for one
    ``(n, n)`` matrix (``bool(is_psd(K))`` or ``.item()`` gives a Python bool).
    """
    eigenvalues, default_tol = _eigenvalues(K, "K")
    tol = default_tol if tol is None else check_nonnegative(tol, "tol")
    return eigenvalues[..., 0] >= -tol


def loewner_gap(K_big, K_small) -> torch.Tensor:
    """Smallest eigenvalue of ``K_big - K_small``, in float64, shape ``(...)``.

    Non-negative (up to rounding) exactly when ``K_big`` dominates ``K_small`` in the
    Loewner order on these points, that is when ``K_big - K_small`` is PSD.
    """
    K_big = _square_symmetric(K_big, "K_big")
    K_small = _square_symmetric(K_small, "K_small")
    if K_big.shape != K_small.shape:
        raise ValueError(f"K_big and K_small must have the same shape, got "
                         f"{tuple(K_big.shape)} and {tuple(K_small.shape)}")
    return torch.linalg.eigvalsh(K_big - K_small.to(K_big.device))[..., 0]


def rkhs_norm(alpha, K, *, squared=False) -> torch.Tensor:
    """RKHS norm ``sqrt(alpha^T K alpha)`` of ``f = sum_i alpha_i k(., x_i)``.

    Parameters
    ----------
    alpha : ``(..., n)`` expansion coefficients; leading dims broadcast against ``K``'s,
        so ``(p, n)`` coefficients of ``p`` functions on one ``(n, n)`` Gram matrix give
        ``p`` norms.
    K : ``(..., n, n)`` Gram matrix ``K[i, j] = k(x_i, x_j)`` of a PSD kernel.
    squared : return ``alpha^T K alpha`` itself instead of its square root.

    Returns
    -------
    ``(...)`` tensor of float64 norms. The quadratic form can come out a rounding error
    below zero; the norm clamps it at 0 (the squared form is returned unclamped).
    """
    K = _square_symmetric(K, "K")
    alpha = as_tensor(alpha, "alpha", like=K).to(F64)
    check_min_dims(alpha, "alpha", 1, "(..., n)")
    if alpha.shape[-1] != K.shape[-1]:
        raise ValueError(f"alpha must have one coefficient per point: K is "
                         f"{K.shape[-1]} x {K.shape[-1]}, alpha has {alpha.shape[-1]}")
    try:
        torch.broadcast_shapes(alpha.shape[:-1], K.shape[:-2])
    except RuntimeError:
        raise ValueError(f"batch dimensions do not broadcast: alpha {tuple(alpha.shape[:-1])}, "
                         f"K {tuple(K.shape[:-2])}") from None
    form = _cores.quadratic_form(alpha, K)
    return form if squared else form.clamp_min(0).sqrt()


class KernelRidge:
    """A fitted kernel ridge regressor ``f(x) = sum_i alpha_i k(x, x_i)``.

    Returned by :func:`kernel_ridge`; everything is float64, on the training data's device.

    Attributes
    ----------
    centres : ``(n, d)`` training inputs, the anchors of the kernel sections.
    alpha : ``(n,)`` coefficients, or ``(n, p)`` for ``p`` targets.
    K : ``(n, n)`` training Gram matrix.
    kernel, params, lam : the kernel, its parameters and the ridge penalty.
    """

    def __init__(self, centres, alpha, K, kernel, params, lam):
        self.centres = centres
        self.alpha = alpha
        self.K = K
        self.kernel = kernel
        self.params = dict(params)
        self.lam = lam

    def _kernel_at(self, x_new) -> torch.Tensor:
        x_new = as_tensor(x_new, "x_new", like=self.centres).to(F64)
        check_min_dims(x_new, "x_new", 2, "(..., m, d)")
        if x_new.shape[-1] != self.centres.shape[-1]:
            raise ValueError(f"x_new must have {self.centres.shape[-1]} features (last "
                             f"axis) like the training inputs, got {x_new.shape[-1]}")
        return self.kernel(x_new, self.centres, **self.params)

    def __call__(self, x_new) -> torch.Tensor:
        """Predictions at ``x_new`` ``(..., m, d)``: shape ``(..., m)`` or ``(..., m, p)``."""
        return self._kernel_at(x_new) @ self.alpha

    def sections(self, x_new) -> torch.Tensor:
        """Each kernel section's share ``alpha_i k(x_new, x_i)`` of the prediction.

        Returns ``(..., m, n)`` for scalar targets and ``(..., m, p, n)`` for ``p`` targets:
        the centres are always the last axis, and summing over it gives ``self(x_new)``
        (up to rounding). Row ``j`` read along the last axis says how much each training
        point contributes to the prediction at ``x_new[j]``.
        """
        k = self._kernel_at(x_new)
        if self.alpha.dim() == 1:
            return k * self.alpha
        return k[..., :, None, :] * self.alpha.mT

    def norm(self, *, squared=False) -> torch.Tensor:
        """RKHS norm ``sqrt(alpha^T K alpha)`` of the fitted function (one per target)."""
        alpha = self.alpha if self.alpha.dim() == 1 else self.alpha.mT
        return rkhs_norm(alpha, self.K, squared=squared)

    def __repr__(self) -> str:
        name = getattr(self.kernel, "__name__", type(self.kernel).__name__)
        return (f"KernelRidge(kernel={name}, n_centres={self.centres.shape[0]}, "
                f"lam={self.lam:g})")


def kernel_ridge(x, y, kernel, lam, **params) -> KernelRidge:
    """Kernel ridge regression, solved by the representer theorem.

    The minimiser of ``sum_i (f(x_i) - y_i)^2 + lam |f|^2`` over the RKHS of ``kernel`` is
    a finite sum of kernel sections at the training inputs, ``f = sum_i alpha_i k(., x_i)``
    with ``alpha = (K + lam I)^{-1} y``. The system is solved by a Cholesky factorisation
    in float64.

    Parameters
    ----------
    x : ``(n, d)`` training inputs.
    y : ``(n,)`` targets, or ``(n, p)`` for ``p`` targets at once.
    kernel : callable ``kernel(x, y, **params)`` giving a symmetric PSD Gram matrix.
    lam : ridge penalty ``>= 0``; ``0`` interpolates and needs a non-singular ``K``.
    **params : the kernel's parameters (``bandwidth=0.5``, ``b=1.0, eps=0.1``, ...).

    Returns
    -------
    KernelRidge
        Callable predictor with ``.alpha``, ``.centres``, ``.norm()`` and ``.sections()``.
    """
    x = as_tensor(x, "x")
    y = as_tensor(y, "y", like=x).to(F64)
    if x.dim() != 2 or 0 in x.shape:
        raise ValueError(f"x must have shape (n, d) with n, d >= 1, got {tuple(x.shape)}")
    if y.dim() not in (1, 2) or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape (n,) or (n, p) with n = {x.shape[0]} like x, "
                         f"got {tuple(y.shape)}")
    lam = check_nonnegative(lam, "lam")
    x = x.to(F64)
    K = gram(kernel, x, **params).to(F64)
    n = K.shape[-1]
    factor, info = torch.linalg.cholesky_ex(K + lam * torch.eye(n, dtype=F64, device=K.device))
    if info.item() != 0:
        raise ValueError(
            f"K + lam I is not positive definite (lam={lam:g}): the kernel is not PSD on "
            f"these points, or lam = 0 with a singular Gram matrix; use a larger lam"
        )
    rhs = y if y.dim() == 2 else y[:, None]
    alpha = torch.cholesky_solve(rhs, factor)
    return KernelRidge(x, alpha if y.dim() == 2 else alpha[:, 0], K, kernel, params, lam)
