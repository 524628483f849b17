"""Matplotlib drawings shared by the chapters (matplotlib is imported by the caller)."""

from __future__ import annotations

import torch

from ._validation import as_tensor
from .kernels import gaussian
from .smoothing import nadaraya_watson

__all__ = ["nadaraya_watson_panel"]

KERNEL_COLOR = "#e8710a"
CURVE_COLOR = "#1a4f8b"


def nadaraya_watson_panel(ax, x_train, y_train, x_query: float, bandwidth: float,
                          *, grid_size: int = 400, show_curve: bool = True) -> float:
    """Draw 1-D Nadaraya-Watson regression with a Gaussian kernel on ``ax``.

    The training points are sized by their kernel weight for the query ``x_query``; the
    kernel bell centred at the query sits along the bottom of the axes; the smoothed curve
    (the prediction at every x) is drawn through the data. Returns the prediction at
    ``x_query``.
    """
    x_train = as_tensor(x_train, "x_train").reshape(-1, 1)
    y_train = as_tensor(y_train, "y_train", like=x_train).reshape(-1)
    lo, hi = x_train.min().item(), x_train.max().item()
    pad = 0.05 * (hi - lo)
    grid = torch.linspace(lo - pad, hi + pad, grid_size, dtype=x_train.dtype)[:, None]
    query = torch.tensor([[float(x_query)]], dtype=x_train.dtype)

    prediction, weights = nadaraya_watson(query, x_train, y_train[:, None], gaussian,
                                          bandwidth=bandwidth)
    weights = weights[0]
    y_lo, y_hi = y_train.min().item(), y_train.max().item()
    y_span = y_hi - y_lo
    floor = y_lo - 0.35 * y_span  # the kernel bell lives below the data

    bell = gaussian(grid, query, bandwidth)[:, 0]
    ax.fill_between(grid[:, 0], floor, floor + 0.3 * y_span * bell, color=KERNEL_COLOR,
                    alpha=0.35, linewidth=0, label=f"kernel at query (bandwidth {bandwidth:g})")
    if show_curve:
        curve, _ = nadaraya_watson(grid, x_train, y_train[:, None], gaussian,
                                   bandwidth=bandwidth)
        ax.plot(grid[:, 0], curve[:, 0], color=CURVE_COLOR, linewidth=2, label="smoothed curve")
    sizes = 8 + 400 * weights / weights.max()
    ax.scatter(x_train[:, 0], y_train, s=sizes, color="#555555", alpha=0.75,
               edgecolor="white", linewidth=0.5, label="data, sized by weight", zorder=3)
    ax.axvline(float(x_query), color=KERNEL_COLOR, linestyle=":", linewidth=1)
    ax.scatter([float(x_query)], [prediction.item()], marker="D", s=70, color=KERNEL_COLOR,
               edgecolor="black", zorder=4, label="prediction at query")
    ax.set_ylim(floor, y_hi + 0.15 * y_span)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    return prediction.item()
