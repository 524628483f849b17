"""Nadaraya-Watson kernel regression: a kernel-weighted average of training targets."""

from __future__ import annotations

import torch

from ._validation import (
    as_tensor,
    broadcast_batch,
    check_min_dims,
    check_same_dtype,
    check_same_last_dim,
)

__all__ = ["nadaraya_watson"]


def nadaraya_watson(x_query, x_train, y_train, kernel, *, mask=None, **kernel_params):
    """Predict ``y(x) = sum_j K(x, x_j) y_j / sum_l K(x, x_l)`` at every query point.

    Parameters
    ----------
    x_query : ``(..., n, d)`` query points (the attention queries).
    x_train : ``(..., m, d)`` training inputs (the keys).
    y_train : ``(..., m, p)`` training targets (the values). With fewer axes than
        ``x_train``, ``(..., m)``, it holds one scalar per point (p = 1) and the prediction
        then has shape ``(..., n)``.
    kernel : callable ``kernel(x, y, **kernel_params)`` returning the ``(..., n, m)`` Gram
        matrix, such as :func:`kernelnotes.kernels.gaussian`. Kernels that provide
        ``kernel.log_gram`` are normalised in log space, which cannot overflow.
    mask : optional boolean ``(..., n, m)``; False removes a training point for that query
        (a causal mask, for example). Every query must keep at least one point.

    Returns
    -------
    prediction : ``(..., n, p)`` (or ``(..., n)``)
    weights : ``(..., n, m)``, non-negative, each row summing to 1.
    """
    x_query = as_tensor(x_query, "x_query")
    x_train = as_tensor(x_train, "x_train", like=x_query)
    y_train = as_tensor(y_train, "y_train", like=x_query)
    if not callable(kernel):
        raise TypeError(f"kernel must be callable, got {type(kernel).__name__}")
    check_min_dims(x_query, "x_query", 2, "(..., n, d)")
    check_min_dims(x_train, "x_train", 2, "(..., m, d)")
    check_min_dims(y_train, "y_train", 1, "(..., m, p) or (..., m)")
    check_same_last_dim(x_query, x_train, ("x_query", "x_train"))
    check_same_dtype((x_query, "x_query"), (x_train, "x_train"), (y_train, "y_train"))
    # y_train with fewer axes than x_train holds one scalar target per training point
    vector_targets = y_train.dim() >= x_train.dim()
    targets = y_train if vector_targets else y_train[..., None]
    if targets.shape[-2] != x_train.shape[-2]:
        raise ValueError(
            f"y_train must have one target per training point: x_train has "
            f"{x_train.shape[-2]} points, y_train has {targets.shape[-2]}"
        )
    broadcast_batch({"x_query": x_query.shape, "x_train": x_train.shape,
                     "y_train": targets.shape}, trailing=2)

    log_gram = getattr(kernel, "log_gram", None)
    scores = (log_gram or kernel)(x_query, x_train, **kernel_params)
    if mask is not None:
        mask = torch.as_tensor(mask, device=scores.device)
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be boolean, got {mask.dtype}")
        try:
            mask = mask.expand(scores.shape)
        except RuntimeError:
            raise ValueError(f"mask must have shape (..., n, m) = {tuple(scores.shape)} "
                             f"or broadcast to it, got {tuple(mask.shape)}") from None
        if not mask.any(-1).all():
            raise ValueError("mask removes every training point for some query")
        fill = float("-inf") if log_gram else 0.0
        scores = scores.masked_fill(~mask, fill)

    if log_gram is not None:
        weights = torch.softmax(scores, dim=-1)
    else:
        if (scores < 0).any():
            raise ValueError("kernel returned negative values; Nadaraya-Watson weights "
                             "need a non-negative kernel")
        totals = scores.sum(-1, keepdim=True)
        if not (torch.isfinite(totals).all() and (totals > 0).all()):
            raise ValueError("kernel weights of some query sum to 0 or overflow; widen the "
                             "bandwidth or pass a kernel with a log_gram form")
        weights = scores / totals
    prediction = weights @ targets
    return (prediction if vector_targets else prediction[..., 0]), weights
