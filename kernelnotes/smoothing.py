"""Nadaraya-Watson kernel regression: a kernel-weighted average of training targets."""

from __future__ import annotations

import torch

from . import _cores
from ._validation import (
    as_tensor,
    broadcast_batch,
    check_min_dims,
    check_same_dtype,
    check_same_last_dim,
)

__all__ = ["nadaraya_watson"]


def _check_mask(mask, shape: torch.Size, device) -> torch.Tensor:
    """``mask`` as a boolean tensor broadcast to the ``(..., n, m)`` weights ``shape``."""
    if not isinstance(mask, torch.Tensor):
        if not isinstance(mask, (list, tuple)) and not hasattr(mask, "__array__"):
            raise TypeError(f"mask must be a boolean tensor, got {type(mask).__name__}")
        mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be boolean, got {mask.dtype}")
    mask = mask.to(device)
    try:
        mask = mask.expand(shape)
    except RuntimeError:
        raise ValueError(f"mask must have shape (..., n, m) = {tuple(shape)} "
                         f"or broadcast to it, got {tuple(mask.shape)}") from None
    if shape[-1] > 0 and not mask.any(-1).all():
        raise ValueError("mask removes every training point for some query")
    return mask


def nadaraya_watson(x_query, x_train, y_train, kernel, *, mask=None, **kernel_params):
    """Predict ``y(x) = sum_j K(x, x_j) y_j / sum_l K(x, x_l)`` at every query point.

    Parameters
    ----------
    x_query : ``(..., n, d)`` query points (the attention queries).
    x_train : ``(..., m, d)`` training inputs (the keys), ``m >= 1``.
    y_train : ``(..., m, p)`` training targets (the values), always with the target axis:
        one scalar target per point is ``(..., m, 1)`` (``y[:, None]``). A shared ``(m, p)``
        target matrix broadcasts against batched inputs.
    kernel : callable ``kernel(x, z, **kernel_params)`` returning the ``(..., n, m)`` Gram
        matrix, such as :func:`kernelnotes.kernels.gaussian`. Kernels that provide
        ``kernel.log_gram`` are normalised in log space, which cannot overflow.
    mask : optional boolean ``(..., n, m)``; False removes a training point for that query
        (a causal mask, for example). Every query must keep at least one point.

    float16 and bfloat16 inputs are computed in float32 and the results rounded back.

    Returns
    -------
    prediction : ``(..., n, p)``
    weights : ``(..., n, m)``, non-negative, each row summing to 1.
    """
    x_query = as_tensor(x_query, "x_query")
    x_train = as_tensor(x_train, "x_train", like=x_query)
    y_train = as_tensor(y_train, "y_train", like=x_query)
    if not callable(kernel):
        raise TypeError(f"kernel must be callable, got {type(kernel).__name__}")
    check_min_dims(x_query, "x_query", 2, "(..., n, d)")
    check_min_dims(x_train, "x_train", 2, "(..., m, d)")
    if y_train.dim() < 2:
        raise ValueError(f"y_train must have shape (..., m, p), got {tuple(y_train.shape)}; "
                         f"for one scalar target per point add the target axis: "
                         f"y_train[..., None]")
    check_same_last_dim(x_query, x_train, ("x_query", "x_train"))
    check_same_dtype((x_query, "x_query"), (x_train, "x_train"), (y_train, "y_train"))
    if y_train.shape[-2] != x_train.shape[-2]:
        raise ValueError(
            f"y_train must have one target per training point (shape (..., m, p)): x_train "
            f"has m = {x_train.shape[-2]} points, y_train has shape {tuple(y_train.shape)}"
        )
    if x_train.shape[-2] == 0:
        raise ValueError("x_train must hold at least one training point, got m = 0")
    batch = broadcast_batch({"x_query": x_query.shape, "x_train": x_train.shape,
                             "y_train": y_train.shape}, trailing=2)
    weights_shape = (*batch, x_query.shape[-2], x_train.shape[-2])
    gram_shape = (*torch.broadcast_shapes(x_query.shape[:-2], x_train.shape[:-2]),
                  x_query.shape[-2], x_train.shape[-2])
    if mask is not None:
        mask = _check_mask(mask, weights_shape, x_query.device)

    dtype = x_query.dtype
    work = _cores.compute_dtype(dtype)
    log_gram = getattr(kernel, "log_gram", None)
    scores = (log_gram or kernel)(x_query.to(work), x_train.to(work), **kernel_params)
    if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != gram_shape:
        got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"kernel must return the (..., n, m) = {gram_shape} Gram matrix "
                         f"of x_query and x_train, got {got}")
    scores = scores.expand(weights_shape)  # batch axes that only y_train has
    if log_gram is None:
        kept = scores if mask is None else scores.masked_fill(~mask, 0.0)
        if (kept < 0).any():
            raise ValueError("kernel returned negative values; Nadaraya-Watson weights "
                             "need a non-negative kernel")
        totals = kept.sum(-1)
        if not (torch.isfinite(totals).all() and (totals > 0).all()):
            raise ValueError("kernel weights of some query sum to 0 or overflow; widen the "
                             "bandwidth or pass a kernel with a log_gram form")
    prediction, weights = _cores.kernel_smoother(scores, y_train.to(work),
                                                 log_space=log_gram is not None, mask=mask)
    return prediction.to(dtype), weights.to(dtype)
