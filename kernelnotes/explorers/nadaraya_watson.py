"""Source A's Nadaraya-Watson figure: drag the query, change the bandwidth."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from .._validation import as_tensor, check_positive
from ..kernels import gaussian
from ..plotting import CURVE_COLOR, KERNEL_COLOR, nadaraya_watson_panel
from ..smoothing import nadaraya_watson
from .base import F64, Explorer, Slider, nice_ticks, points, round_values, value_range

__all__ = ["NadarayaWatsonExplorer"]

DATA_COLOR = "#555555"


def _predict_with_weights(x_query: torch.Tensor, x_train: torch.Tensor, y_train: torch.Tensor,
                          bandwidth: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Estimates ``(m,)`` and normalised weights ``(m, n)`` at 1-D float64 queries."""
    prediction, weights = nadaraya_watson(x_query[:, None], x_train[:, None], y_train[:, None],
                                          gaussian, bandwidth=bandwidth)
    return prediction[:, 0], weights


class NadarayaWatsonExplorer(Explorer):
    """Source A's Nadaraya-Watson figure, interactive in the browser with no kernel.

    Drag on the chart (or use the sliders) to move the query ``x``; a second slider sets
    the Gaussian bandwidth ``h`` on a log scale (slider ``log10_bandwidth``). The figure
    draws the data points sized by their kernel weight for the query, the kernel bell at
    the query along the bottom, and the smoothed curve (the prediction at every ``x``).

    Parameters
    ----------
    x_train, y_train : ``(n,)`` (or ``(n, 1)``) inputs and targets of the 1-D toy data.
        They are rounded to 6 significant digits once, here, so that Python and the
        page's JavaScript work on exactly the same numbers.
    bandwidth : initial bandwidth ``h > 0`` of the Gaussian kernel
        ``exp(-(x - x_j)^2 / (2 h^2))``.
    query : initial query; defaults to the middle of the domain.
    bandwidth_range : ``(lo, hi)`` of the bandwidth slider (log scale); defaults to
        a 1% to 50% slice of the data's span, widened to include ``bandwidth``.
    domain : ``(lo, hi)`` of the x axis and the query slider; defaults to the data's range
        padded by 5% on each side.
    title : the figure's heading, also its accessible name.
    """

    kind = "nadaraya-watson"
    script = "nadaraya_watson.js"
    status_template = ("Query x = {query}, bandwidth h = {bandwidth}: the estimate is "
                       "{estimate}; the largest weight is {largest:.2f} and {carrying:d} of "
                       "{n:d} points carry 90% of the weight.")

    def __init__(self, x_train, y_train, bandwidth, *, query=None, bandwidth_range=None,
                 domain=None, title="Nadaraya-Watson regression: drag the query"):
        x = points(x_train, "x_train")
        y = points(y_train, "y_train")
        if x.shape != y.shape:
            raise ValueError(f"x_train and y_train must have one target per point, got "
                             f"{x.numel()} points and {y.numel()} targets")
        self.x_train = torch.tensor(round_values(x), dtype=F64)
        self.y_train = torch.tensor(round_values(y), dtype=F64)
        self.bandwidth = check_positive(bandwidth, "bandwidth")

        lo, hi = self.x_train.min().item(), self.x_train.max().item()
        span = (hi - lo) or 1.0
        self.domain = (value_range(domain, "domain") if domain is not None
                       else (lo - 0.05 * span, hi + 0.05 * span))
        if bandwidth_range is None:
            bandwidth_range = (min(self.bandwidth, 0.01 * span),
                               max(self.bandwidth, 0.5 * span))
        self.bandwidth_range = value_range(bandwidth_range, "bandwidth_range")
        if self.bandwidth_range[0] <= 0:
            raise ValueError(f"bandwidth_range must be positive, got {self.bandwidth_range}")
        if not self.bandwidth_range[0] <= self.bandwidth <= self.bandwidth_range[1]:
            raise ValueError(f"bandwidth {self.bandwidth} lies outside bandwidth_range "
                             f"{self.bandwidth_range}")
        mid = 0.5 * (self.domain[0] + self.domain[1])
        self.query = mid if query is None else float(query)
        if not self.domain[0] <= self.query <= self.domain[1]:
            raise ValueError(f"query {self.query} lies outside the domain {self.domain}")
        self.title = str(title)

    # --- the numbers -------------------------------------------------------------------

    def predict(self, x_query, bandwidth=None) -> torch.Tensor:
        """The Nadaraya-Watson estimate at each query point, shape ``(m,)``, float64."""
        return self.predict_with_weights(x_query, bandwidth)[0]

    def weights(self, x_query, bandwidth=None) -> torch.Tensor:
        """Each training point's normalised kernel weight, shape ``(m, n)``, rows sum to 1."""
        return self.predict_with_weights(x_query, bandwidth)[1]

    def predict_with_weights(self, x_query, bandwidth=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(prediction, weights)``: the estimates ``(m,)`` and the weights ``(m, n)``."""
        h = self.bandwidth if bandwidth is None else check_positive(bandwidth, "bandwidth")
        queries = as_tensor(x_query, "x_query").to(F64).reshape(-1)
        return _predict_with_weights(queries, self.x_train, self.y_train, h)

    @classmethod
    def state(cls, data: dict, values: Mapping[str, float]) -> dict:
        query, bandwidth = float(values["query"]), 10.0 ** float(values["log10_bandwidth"])
        prediction, weights = _predict_with_weights(
            torch.tensor([query], dtype=F64), torch.tensor(data["x"], dtype=F64),
            torch.tensor(data["y"], dtype=F64), bandwidth)
        w = weights[0].sort(descending=True).values
        carrying = int((w.cumsum(0) < 0.9).sum().item()) + 1
        return {"query": query, "bandwidth": bandwidth, "estimate": prediction.item(),
                "largest": w[0].item(), "carrying": min(carrying, w.numel()), "n": w.numel()}

    # --- the page ----------------------------------------------------------------------

    def description(self) -> str:
        return (
            f"Interactive chart of {self.x_train.numel()} data points with a Nadaraya-Watson "
            "smoothed curve through them. An orange bell along the bottom is the Gaussian "
            "kernel centred at the query; each point is drawn with a size that grows with "
            "its kernel weight; an orange diamond marks the estimate at the query. Drag on "
            "the chart or use the sliders to move the query and change the bandwidth."
        )

    def sliders(self) -> list[Slider]:
        step = float(f"{(self.domain[1] - self.domain[0]) / 400:.2g}")
        log_range = tuple(math.log10(v) for v in self.bandwidth_range)
        return [
            Slider.aligned("query", "query x", "x = {query}", self.domain, step, self.query),
            Slider.aligned("log10_bandwidth", "bandwidth h", "h = {bandwidth}", log_range,
                           0.005, math.log10(self.bandwidth)),
        ]

    def payload(self) -> dict:
        y_lo, y_hi = self.y_train.min().item(), self.y_train.max().item()
        y_span = (y_hi - y_lo) or 1.0
        floor = y_lo - 0.35 * y_span  # the kernel bell lives below the data
        ylim = (floor - 0.02 * y_span, y_hi + 0.15 * y_span)
        return {
            "x": self.x_train.tolist(),
            "y": self.y_train.tolist(),
            "domain": round_values(self.domain),
            "ylim": round_values(ylim),
            "bell": round_values([floor, 0.3 * y_span]),
            "xticks": nice_ticks(*self.domain),
            "yticks": nice_ticks(y_lo, y_hi + 0.15 * y_span, 7),
            "colors": {"kernel": KERNEL_COLOR, "curve": CURVE_COLOR, "data": DATA_COLOR},
        }

    def draw(self, ax, values: Mapping[str, float]) -> None:
        nadaraya_watson_panel(ax, self.x_train, self.y_train, values["query"],
                              10.0 ** values["log10_bandwidth"])
        ax.set_xlim(*self.domain)

    def __repr__(self) -> str:
        return (f"NadarayaWatsonExplorer(n={self.x_train.numel()}, "
                f"bandwidth={self.bandwidth:g}, query={self.query:g}): {self.description()}")
