"""Interactive figures that need no Python kernel: self-contained HTML and JavaScript.

Each explorer is an object with ``_repr_html_``. Displayed in a notebook, or rendered into
the static book, its output is one ``<div>`` holding labelled range sliders, a ``<canvas>``,
the data as JSON and a short inline script that redraws the figure in the browser. Nothing
in it talks to a kernel or fetches a file, so the same output works in JupyterLab, in
VS Code and on a static page opened from disk. The browser does the arithmetic (a
Nadaraya-Watson average over a few dozen points; sums of Gaussian bells); Python computes
the same numbers (:meth:`NadarayaWatsonExplorer.predict`,
:meth:`KernelSectionsExplorer.sections`) so the tests can hold the JavaScript to them.

The HTML is deterministic: element ids come from a hash of the data plus a per-process
render counter, never from random numbers, so re-executing a notebook reproduces its
output byte for byte (strict nbval compares HTML outputs as text).
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import math
from collections import Counter

import torch

from ._validation import as_tensor, check_positive
from .kernels import gaussian
from .plotting import CURVE_COLOR, KERNEL_COLOR, nadaraya_watson_panel
from .rkhs import kernel_ridge
from .smoothing import nadaraya_watson

__all__ = ["KernelSectionsExplorer", "NadarayaWatsonExplorer"]

F64 = torch.float64
DATA_COLOR = "#555555"
TARGET_COLOR = "#222222"
SECTION_COLOR = "#f4b183"

# How many times each data hash has been rendered in this process: the second display of
# the same figure on one page gets a distinct id.
_renders: Counter[str] = Counter()


# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------

def _round(values, digits: int = 6) -> list[float]:
    """Round to ``digits`` significant digits: short JSON, and identical text on every
    machine as long as the float64 inputs agree to that precision."""
    return [float(f"{v:.{digits}g}") for v in torch.as_tensor(values).reshape(-1).tolist()]


def _fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}g}"


def nice_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """Round tick positions inside ``[lo, hi]``: multiples of 1, 2, 2.5 or 5 times a power
    of ten, at most ``max_ticks`` of them."""
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"need finite lo < hi, got lo={lo}, hi={hi}")
    raw = (hi - lo) / max(max_ticks - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + 1e-9 * step:
        ticks.append(float(f"{k * step:.10g}") + 0.0)  # + 0.0 turns -0.0 into 0.0
        k += 1
    return ticks


def _points(values, name: str) -> torch.Tensor:
    """1-D float64 points from ``(n,)`` or ``(n, 1)`` input, finite, at least one."""
    tensor = as_tensor(values, name).to(F64)
    if tensor.dim() == 2 and tensor.shape[1] == 1:
        tensor = tensor[:, 0]
    if tensor.dim() != 1 or tensor.numel() == 0:
        raise ValueError(f"{name} must have shape (n,) or (n, 1) with n >= 1, "
                         f"got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} has non-finite entries")
    return tensor


def _range(pair, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in pair)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair of numbers (lo, hi), got {pair!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be finite with lo < hi, got ({lo}, {hi})")
    return lo, hi


def _element_id(kind: str, payload: str) -> str:
    digest = hashlib.sha1(f"{kind}:{payload}".encode()).hexdigest()[:10]
    n = _renders[digest]
    _renders[digest] += 1
    return f"kn-{kind}-{digest}" + (f"-{n}" if n else "")


def _json_script(payload: dict) -> str:
    # "<" escaped so that no "</script>" can end the data block early.
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return f'<script type="application/json" class="kn-data">{text}</script>'


def _aligned(lo: float, hi: float, value: float, step: float) -> tuple[str, str]:
    """Slider bounds inside ``[lo, hi]`` that put ``value`` exactly on the step grid, so
    the page starts from the very state Python describes (a range input snaps its value
    to ``min + k * step``)."""
    below = math.floor((value - lo) / step + 1e-9)
    above = math.floor((hi - value) / step + 1e-9)
    return repr(value - below * step), repr(value + above * step)


def _slider(uid: str, name: str, label: str, bounds, step, value, valuetext: str,
            shown: str) -> str:
    lo, hi = bounds
    return (
        f'<div class="kn-control"><label for="{uid}-{name}">{label}</label>'
        f'<input type="range" id="{uid}-{name}" name="{name}" min="{lo}" max="{hi}" '
        f'step="{step}" value="{value}" aria-valuetext="{html.escape(valuetext)}">'
        f'<output for="{uid}-{name}" id="{uid}-{name}-value">{html.escape(shown)}</output></div>'
    )


def _page(uid: str, kind: str, title: str, description: str, controls: str, status: str,
          payload: dict, script: str) -> str:
    """The common frame: title, canvas with its text description, controls, live status."""
    return (
        f'<div class="kn-explorer" id="{uid}" data-kind="{kind}">'
        f"<style>{_CSS}</style>"
        f'<p class="kn-title" id="{uid}-title">{html.escape(title)}</p>'
        f'<canvas width="720" height="450" role="img" aria-labelledby="{uid}-title" '
        f'aria-describedby="{uid}-desc"></canvas>'
        f'<p class="kn-desc" id="{uid}-desc">{html.escape(description)}</p>'
        f'<div class="kn-controls">{controls}</div>'
        f'<p class="kn-status" id="{uid}-status" role="status" aria-live="polite">'
        f"{html.escape(status)}</p>"
        f"{_json_script(payload)}"
        f"<script>(function (root) {{\n\"use strict\";\n{_JS_COMMON}\n{script}\n}})("
        f"(document.currentScript && document.currentScript.closest('.kn-explorer')) || "
        f"document.getElementById('{uid}'));</script>"
        f"</div>"
    )


# ---------------------------------------------------------------------------------------
# Nadaraya-Watson explorer
# ---------------------------------------------------------------------------------------

class NadarayaWatsonExplorer:
    """Source A's Nadaraya-Watson figure, interactive in the browser with no kernel.

    Drag on the chart (or use the sliders) to move the query ``x``; a second slider sets
    the Gaussian bandwidth ``h``. The figure draws the data points sized by their kernel
    weight for the query, the kernel bell at the query along the bottom, and the smoothed
    curve (the prediction at every ``x``).

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

    def __init__(self, x_train, y_train, bandwidth, *, query=None, bandwidth_range=None,
                 domain=None, title="Nadaraya-Watson regression: drag the query"):
        x = _points(x_train, "x_train")
        y = _points(y_train, "y_train")
        if x.shape != y.shape:
            raise ValueError(f"x_train and y_train must have one target per point, got "
                             f"{x.numel()} points and {y.numel()} targets")
        self.x_train = torch.tensor(_round(x), dtype=F64)
        self.y_train = torch.tensor(_round(y), dtype=F64)
        self.bandwidth = check_positive(bandwidth, "bandwidth")

        lo, hi = self.x_train.min().item(), self.x_train.max().item()
        span = (hi - lo) or 1.0
        self.domain = (_range(domain, "domain") if domain is not None
                       else (lo - 0.05 * span, hi + 0.05 * span))
        if bandwidth_range is None:
            bandwidth_range = (min(self.bandwidth, 0.01 * span),
                               max(self.bandwidth, 0.5 * span))
        self.bandwidth_range = _range(bandwidth_range, "bandwidth_range")
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

    def predict(self, x_query, bandwidth=None) -> torch.Tensor:
        """The Nadaraya-Watson estimate at each query point, shape ``(m,)``, float64."""
        return self.weights_and_predict(x_query, bandwidth)[0]

    def weights(self, x_query, bandwidth=None) -> torch.Tensor:
        """Each training point's normalised kernel weight, shape ``(m, n)``, rows sum to 1."""
        return self.weights_and_predict(x_query, bandwidth)[1]

    def weights_and_predict(self, x_query, bandwidth=None):
        h = self.bandwidth if bandwidth is None else check_positive(bandwidth, "bandwidth")
        queries = as_tensor(x_query, "x_query").to(F64).reshape(-1, 1)
        return nadaraya_watson(queries, self.x_train[:, None], self.y_train, gaussian,
                               bandwidth=h)

    def status(self, query: float, bandwidth: float) -> str:
        """The sentence the figure shows (and announces to screen readers) for a state."""
        prediction, weights = self.weights_and_predict(query, bandwidth)
        w = weights[0].sort(descending=True).values
        carrying = int((w.cumsum(0) < 0.9).sum().item()) + 1
        return (f"Query x = {query:.3g}, bandwidth h = {bandwidth:.3g}: the estimate is "
                f"{prediction.item():.3g}; the largest weight is {w[0].item():.2f} and "
                f"{carrying} of {w.numel()} points carry 90% of the weight.")

    def description(self) -> str:
        """Text alternative of the figure."""
        return (
            f"Interactive chart of {self.x_train.numel()} data points with a Nadaraya-Watson "
            "smoothed curve through them. An orange bell along the bottom is the Gaussian "
            "kernel centred at the query; each point is drawn with a size that grows with "
            "its kernel weight; an orange diamond marks the estimate at the query. Drag on "
            "the chart or use the sliders to move the query and change the bandwidth."
        )

    def payload(self) -> dict:
        """The data the page's script reads (everything it draws is computed from this)."""
        y_lo, y_hi = self.y_train.min().item(), self.y_train.max().item()
        y_span = (y_hi - y_lo) or 1.0
        floor = y_lo - 0.35 * y_span  # the kernel bell lives below the data
        ylim = (floor - 0.02 * y_span, y_hi + 0.15 * y_span)
        return {
            "x": self.x_train.tolist(),
            "y": self.y_train.tolist(),
            "domain": _round(self.domain),
            "ylim": _round(ylim),
            "bell": _round([floor, 0.3 * y_span]),
            "xticks": nice_ticks(*self.domain),
            "yticks": nice_ticks(y_lo, y_hi + 0.15 * y_span, 7),
            "colors": {"kernel": KERNEL_COLOR, "curve": CURVE_COLOR, "data": DATA_COLOR},
        }

    def _repr_html_(self) -> str:
        payload = self.payload()
        uid = _element_id("nw", json.dumps([payload, self.query, self.bandwidth]))
        step = float(f"{(self.domain[1] - self.domain[0]) / 400:.2g}")
        log_h = math.log10(self.bandwidth)
        log_range = [math.log10(v) for v in self.bandwidth_range]
        controls = (
            _slider(uid, "query", "query x", _aligned(*self.domain, self.query, step), step,
                    repr(self.query), f"x = {self.query:.3g}", f"{self.query:.3g}")
            + _slider(uid, "bandwidth", "bandwidth h", _aligned(*log_range, log_h, 0.005),
                      0.005, repr(log_h), f"h = {self.bandwidth:.3g}",
                      f"{self.bandwidth:.3g}")
        )
        return _page(uid, self.kind, self.title, self.description(), controls,
                     self.status(self.query, self.bandwidth), payload, _JS_NADARAYA_WATSON)

    def widget(self):
        """The same figure driven from Python by ipywidgets, for a live kernel.

        The HTML output needs a front end that runs the scripts of trusted outputs
        (JupyterLab, Notebook 7). Where that is not the case, this returns an ipywidgets box
        whose sliders redraw the matplotlib version of the figure
        (:func:`kernelnotes.plotting.nadaraya_watson_panel`) in the kernel. Its callbacks
        are Python, so on a static page it would show nothing: the book uses the HTML form.
        """
        import ipywidgets as widgets

        query = widgets.FloatSlider(value=self.query, min=self.domain[0], max=self.domain[1],
                                    step=(self.domain[1] - self.domain[0]) / 400,
                                    description="query x", continuous_update=False)
        bandwidth = widgets.FloatLogSlider(
            value=self.bandwidth, min=math.log10(self.bandwidth_range[0]),
            max=math.log10(self.bandwidth_range[1]), step=0.01, description="bandwidth h",
            continuous_update=False)
        image = widgets.Image(format="png")
        status = widgets.Label()

        def redraw(_change=None):
            image.value = self.panel_png(query.value, bandwidth.value)
            status.value = self.status(query.value, bandwidth.value)

        query.observe(redraw, names="value")
        bandwidth.observe(redraw, names="value")
        redraw()
        return widgets.VBox([widgets.HBox([query, bandwidth]), image, status])

    def panel_png(self, query: float, bandwidth: float, *, dpi: int = 90) -> bytes:
        """The matplotlib figure for one state, as PNG bytes (used by :meth:`widget`)."""
        from matplotlib.figure import Figure  # no pyplot: no global figure state

        fig = Figure(figsize=(7, 3.6), layout="tight")
        ax = fig.subplots()
        nadaraya_watson_panel(ax, self.x_train, self.y_train, query, bandwidth)
        ax.set_xlim(*self.domain)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()

    def __repr__(self) -> str:
        return (f"NadarayaWatsonExplorer(n={self.x_train.numel()}, "
                f"bandwidth={self.bandwidth:g}, query={self.query:g}): {self.description()}")


# ---------------------------------------------------------------------------------------
# Kernel-sections explorer
# ---------------------------------------------------------------------------------------

class KernelSectionsExplorer:
    """Source A's kernel-sections figure with a width slider, interactive with no kernel.

    A target function (dashed) is fitted by kernel ridge regression with a Gaussian kernel
    centred at fixed anchors, ``f = sum_j alpha_j k(., a_j)``, once for each width on the
    slider (:func:`kernelnotes.rkhs.kernel_ridge`). The figure draws the sum (orange), the
    individual sections ``alpha_j k(., a_j)`` (light) and the target; moving the slider
    switches between the precomputed fits.

    Parameters
    ----------
    target : callable mapping a float64 tensor of points ``(m,)`` to values ``(m,)``.
    anchors : ``(n,)`` centres of the kernel sections (the training inputs of the fit).
    widths : increasing kernel widths (bandwidths) for the slider; defaults to 25 values
        log-spaced from 2% to 50% of the domain's length.
    lam : ridge penalty of the fits (``>= 0``).
    width_index : the slider's initial position; defaults to the middle.
    domain : ``(lo, hi)`` of the x axis; defaults to the anchors' range padded by 5%.
    grid_size : how many points sample the target for the dashed curve.
    """

    kind = "kernel-sections"

    def __init__(self, target, anchors, *, widths=None, lam=1e-2, width_index=None,
                 domain=None, grid_size=241, title="Kernel sections: change the width"):
        if not callable(target):
            raise TypeError(f"target must be callable, got {type(target).__name__}")
        anchors = torch.tensor(_round(_points(anchors, "anchors")), dtype=F64)
        lo, hi = anchors.min().item(), anchors.max().item()
        span = (hi - lo) or 1.0
        self.domain = (_range(domain, "domain") if domain is not None
                       else (lo - 0.05 * span, hi + 0.05 * span))
        length = self.domain[1] - self.domain[0]
        if widths is None:
            widths = torch.logspace(math.log10(0.02 * length), math.log10(0.5 * length), 25,
                                    dtype=F64)
        widths = _points(widths, "widths")
        if (widths <= 0).any() or (widths.diff() <= 0).any():
            raise ValueError("widths must be positive and strictly increasing")
        if isinstance(grid_size, bool) or not isinstance(grid_size, int) or grid_size < 2:
            raise ValueError(f"grid_size must be an integer >= 2, got {grid_size!r}")
        self.anchors = anchors
        self.widths = torch.tensor(_round(widths), dtype=F64)
        if len(set(self.widths.tolist())) != self.widths.numel():
            raise ValueError("widths must differ in their first 6 significant digits")
        self.width_index = len(self.widths) // 2 if width_index is None else int(width_index)
        if not 0 <= self.width_index < len(self.widths):
            raise ValueError(f"width_index must lie in [0, {len(self.widths) - 1}], "
                             f"got {width_index}")
        self.grid = torch.linspace(*self.domain, grid_size, dtype=F64)
        self.target_values = self._call_target(target, self.grid, "grid")
        anchor_targets = self._call_target(target, anchors, "anchors")
        self.fits = [kernel_ridge(anchors[:, None], anchor_targets, gaussian, lam,
                                  bandwidth=w) for w in self.widths.tolist()]
        # The page works with coefficients rounded to 7 digits: keep exactly those.
        self.alphas = torch.tensor([_round(fit.alpha, 7) for fit in self.fits], dtype=F64)
        self.lam = float(lam)
        self.title = str(title)

    @staticmethod
    def _call_target(target, points, name):
        values = torch.as_tensor(target(points), dtype=F64)
        if values.shape != points.shape or not torch.isfinite(values).all():
            raise ValueError(f"target must map the {name} {tuple(points.shape)} to as many "
                             f"finite values, got shape {tuple(values.shape)}")
        return values

    def sections(self, x, width_index=None) -> torch.Tensor:
        """Each section ``alpha_j k(x, a_j)`` at the points ``x``: shape ``(m, n)``.

        Summing over the last axis gives the fitted function at ``x``; these are the
        numbers the page draws for that slider position.
        """
        i = self.width_index if width_index is None else int(width_index)
        if not 0 <= i < len(self.widths):
            raise ValueError(f"width_index must lie in [0, {len(self.widths) - 1}], got {i}")
        x = as_tensor(x, "x").to(F64).reshape(-1, 1)
        return gaussian(x, self.anchors[:, None], self.widths[i].item()) * self.alphas[i]

    def rms_errors(self) -> torch.Tensor:
        """Root-mean-square distance between the fit and the target over the grid, per width."""
        fitted = torch.stack([self.sections(self.grid, i).sum(-1)
                              for i in range(len(self.widths))])
        return ((fitted - self.target_values) ** 2).mean(-1).sqrt()

    def norms(self) -> torch.Tensor:
        """RKHS norm ``sqrt(alpha^T K alpha)`` of the fit at each width."""
        return torch.stack([fit.norm() for fit in self.fits])

    def status(self, width_index: int) -> str:
        """The sentence the figure shows (and announces to screen readers) for a width."""
        return _sections_status(self.widths[width_index].item(), self.anchors.numel(),
                                self.rms_errors()[width_index].item(),
                                self.norms()[width_index].item())

    def description(self) -> str:
        """Text alternative of the figure."""
        return (
            f"Interactive chart: a dashed target function, its approximation (orange) as a "
            f"sum of {self.anchors.numel()} Gaussian kernel sections centred at fixed "
            "anchors marked on the axis, and the individual sections as light curves. A "
            "slider sets the kernel width: narrow sections are local bumps, wide ones "
            "overlap and pool."
        )

    def payload(self) -> dict:
        fitted = torch.stack([self.sections(self.grid, i).sum(-1)
                              for i in range(len(self.widths))])
        lo = min(self.target_values.min().item(), fitted.min().item())
        hi = max(self.target_values.max().item(), fitted.max().item())
        pad = 0.12 * ((hi - lo) or 1.0)
        return {
            "anchors": self.anchors.tolist(),
            "widths": self.widths.tolist(),
            "alphas": self.alphas.tolist(),
            "grid": _round(self.grid, 7),
            "target": _round(self.target_values, 5),
            "rms": _round(self.rms_errors(), 3),
            "norm": _round(self.norms(), 3),
            "domain": _round(self.domain),
            "ylim": _round([lo - pad, hi + pad]),
            "xticks": nice_ticks(*self.domain),
            "yticks": nice_ticks(lo - pad, hi + pad, 7),
            "colors": {"sum": KERNEL_COLOR, "section": SECTION_COLOR, "target": TARGET_COLOR},
        }

    def _repr_html_(self) -> str:
        payload = self.payload()
        uid = _element_id("ks", json.dumps([payload, self.width_index]))
        w = self.widths[self.width_index].item()
        controls = _slider(uid, "width", "kernel width", (0, len(self.widths) - 1), 1,
                           self.width_index, f"width {w:.3g}", f"{w:.3g}")
        status = _sections_status(w, self.anchors.numel(), payload["rms"][self.width_index],
                                  payload["norm"][self.width_index])
        return _page(uid, self.kind, self.title, self.description(), controls, status,
                     payload, _JS_SECTIONS)

    def __repr__(self) -> str:
        return (f"KernelSectionsExplorer(n_anchors={self.anchors.numel()}, "
                f"widths={len(self.widths)}, lam={self.lam:g}): {self.description()}")


def _sections_status(width: float, n: int, rms: float, norm: float) -> str:
    return (f"Kernel width {width:.3g}: the sum of {n} sections is {rms:.3g} (root mean "
            f"square) away from the target; its RKHS norm is {norm:.3g}.")


# ---------------------------------------------------------------------------------------
# The page side: CSS and JavaScript (plain ES5-style code, no libraries)
# ---------------------------------------------------------------------------------------

_CSS = (
    ".kn-explorer{box-sizing:border-box;max-width:46rem;margin:.5rem 0;padding:.6rem .8rem;"
    "border:1px solid #d0d7de;border-radius:6px;background:#fff;color:#1f2328;"
    "font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}"
    ".kn-explorer .kn-title{margin:0 0 .3rem;font-weight:600}"
    ".kn-explorer canvas{display:block;width:100%;height:auto;aspect-ratio:16/10;"
    "touch-action:pan-y;cursor:ew-resize}"
    ".kn-explorer .kn-desc{position:absolute;width:1px;height:1px;overflow:hidden;"
    "clip:rect(0 0 0 0);white-space:nowrap}"
    ".kn-explorer .kn-controls{display:flex;flex-wrap:wrap;gap:.3rem 1.2rem;margin:.4rem 0}"
    ".kn-explorer .kn-control{display:flex;align-items:center;gap:.5rem;flex:1 1 15rem;"
    "min-width:0}"
    ".kn-explorer label{white-space:nowrap}"
    ".kn-explorer input[type=range]{flex:1 1 auto;min-width:5rem;margin:0;"
    "accent-color:#e8710a}"
    ".kn-explorer output{min-width:3.2rem;font-variant-numeric:tabular-nums}"
    ".kn-explorer .kn-status{margin:.2rem 0 0;font-size:13px;color:#3d444d}"
    "@media (max-width:540px){.kn-explorer canvas{aspect-ratio:4/3}}"
)

# Shared by both explorers: read the data, size the canvas for the screen, draw axes.
_JS_COMMON = r"""
var data = JSON.parse(root.querySelector(".kn-data").textContent);
var canvas = root.querySelector("canvas");
var statusLine = root.querySelector(".kn-status");
function fmt(v, digits) { return String(Number(v.toPrecision(digits || 3))); }
function linspace(lo, hi, n) {
  var out = [];
  for (var i = 0; i < n; i++) { out.push(lo + (hi - lo) * i / (n - 1)); }
  return out;
}
function frame() {
  var dpr = window.devicePixelRatio || 1;
  var w = canvas.clientWidth, h = canvas.clientHeight;
  if (!w || !h) { return null; }
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  }
  var ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = "#ffffff"; ctx.fillRect(0, 0, w, h);
  var m = {l: 44, r: 12, t: 8, b: 26};
  var xl = data.domain, yl = data.ylim;
  var f = {
    ctx: ctx, left: m.l, right: w - m.r, top: m.t, bottom: h - m.b,
    X: function (x) { return m.l + (x - xl[0]) / (xl[1] - xl[0]) * (w - m.l - m.r); },
    Y: function (y) { return h - m.b - (y - yl[0]) / (yl[1] - yl[0]) * (h - m.t - m.b); },
    invX: function (px) { return xl[0] + (px - m.l) / (w - m.l - m.r) * (xl[1] - xl[0]); }
  };
  ctx.font = "12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  ctx.lineWidth = 1; ctx.strokeStyle = "#e6e8eb"; ctx.fillStyle = "#57606a";
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  data.xticks.forEach(function (t) {
    var px = f.X(t);
    ctx.beginPath(); ctx.moveTo(px, f.top); ctx.lineTo(px, f.bottom); ctx.stroke();
    ctx.fillText(fmt(t, 4), px, f.bottom + 5);
  });
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  data.yticks.forEach(function (t) {
    var py = f.Y(t);
    ctx.beginPath(); ctx.moveTo(f.left, py); ctx.lineTo(f.right, py); ctx.stroke();
    ctx.fillText(fmt(t, 4), f.left - 6, py);
  });
  ctx.strokeStyle = "#8c959f";
  ctx.strokeRect(f.left, f.top, f.right - f.left, f.bottom - f.top);
  ctx.save();
  ctx.beginPath(); ctx.rect(f.left, f.top, f.right - f.left, f.bottom - f.top); ctx.clip();
  return f;
}
function polyline(f, xs, ys, color, width, dash) {
  var ctx = f.ctx;
  ctx.beginPath();
  ctx.moveTo(f.X(xs[0]), f.Y(ys[0]));
  for (var i = 1; i < xs.length; i++) { ctx.lineTo(f.X(xs[i]), f.Y(ys[i])); }
  ctx.setLineDash(dash || []); ctx.strokeStyle = color; ctx.lineWidth = width; ctx.stroke();
  ctx.setLineDash([]);
}
function showValue(input, spoken, shown) {
  input.setAttribute("aria-valuetext", spoken);
  root.querySelector("output[for='" + input.id + "']").textContent = shown;
}
var redraw = function () {};
function watchSize() {
  if (window.ResizeObserver) { new ResizeObserver(function () { redraw(); }).observe(canvas); }
  else { window.addEventListener("resize", function () { redraw(); }); }
}
"""

_JS_NADARAYA_WATSON = r"""
var queryInput = root.querySelector("input[name=query]");
var widthInput = root.querySelector("input[name=bandwidth]");
var xs = data.x, ys = data.y, grid = linspace(data.domain[0], data.domain[1], 241);
var last = null, dragging = false;
function weights(q, h) {
  var s = xs.map(function (x) { return -(q - x) * (q - x) / (2 * h * h); });
  var top = Math.max.apply(null, s), total = 0;
  var w = s.map(function (v) { var e = Math.exp(v - top); total += e; return e; });
  return w.map(function (v) { return v / total; });
}
function estimate(w) {
  var sum = 0;
  for (var i = 0; i < w.length; i++) { sum += w[i] * ys[i]; }
  return sum;
}
redraw = function () {
  var q = Number(queryInput.value), h = Math.pow(10, Number(widthInput.value));
  var w = weights(q, h), fq = estimate(w), wmax = Math.max.apply(null, w);
  root.dataset.query = String(q); root.dataset.bandwidth = String(h);
  root.dataset.estimate = String(fq);
  showValue(queryInput, "x = " + fmt(q), fmt(q));
  showValue(widthInput, "h = " + fmt(h), fmt(h));
  var sorted = w.slice().sort(function (a, b) { return b - a; }), acc = 0, carrying = 0;
  while (acc < 0.9 && carrying < sorted.length) { acc += sorted[carrying]; carrying += 1; }
  statusLine.textContent = "Query x = " + fmt(q) + ", bandwidth h = " + fmt(h) +
    ": the estimate is " + fmt(fq) + "; the largest weight is " + wmax.toFixed(2) +
    " and " + carrying + " of " + w.length + " points carry 90% of the weight.";
  var f = frame();
  last = f;
  if (!f) { return; }
  var ctx = f.ctx, floor = data.bell[0], height = data.bell[1];
  ctx.beginPath(); ctx.moveTo(f.X(grid[0]), f.Y(floor));
  grid.forEach(function (g) {
    ctx.lineTo(f.X(g), f.Y(floor + height * Math.exp(-(g - q) * (g - q) / (2 * h * h))));
  });
  ctx.lineTo(f.X(grid[grid.length - 1]), f.Y(floor)); ctx.closePath();
  ctx.globalAlpha = 0.35; ctx.fillStyle = data.colors.kernel; ctx.fill(); ctx.globalAlpha = 1;
  polyline(f, grid, grid.map(function (g) { return estimate(weights(g, h)); }),
           data.colors.curve, 2);
  ctx.setLineDash([2, 3]); ctx.strokeStyle = data.colors.kernel; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(f.X(q), f.top); ctx.lineTo(f.X(q), f.bottom); ctx.stroke();
  ctx.setLineDash([]);
  ctx.globalAlpha = 0.75; ctx.fillStyle = data.colors.data; ctx.strokeStyle = "#ffffff";
  xs.forEach(function (x, i) {
    ctx.beginPath();
    ctx.arc(f.X(x), f.Y(ys[i]), 1.5 + 9.5 * Math.sqrt(w[i] / wmax), 0, 2 * Math.PI);
    ctx.fill(); ctx.stroke();
  });
  ctx.globalAlpha = 1;
  var px = f.X(q), py = f.Y(fq);
  ctx.beginPath(); ctx.moveTo(px, py - 7); ctx.lineTo(px + 6, py); ctx.lineTo(px, py + 7);
  ctx.lineTo(px - 6, py); ctx.closePath();
  ctx.fillStyle = data.colors.kernel; ctx.fill(); ctx.strokeStyle = "#000000"; ctx.stroke();
  ctx.restore();
};
function moveTo(event) {
  if (!last) { return; }
  var rect = canvas.getBoundingClientRect();
  var x = last.invX(event.clientX - rect.left);
  queryInput.value = String(Math.min(data.domain[1], Math.max(data.domain[0], x)));
  redraw();
}
canvas.addEventListener("pointerdown", function (e) {
  dragging = true; canvas.setPointerCapture(e.pointerId); moveTo(e);
});
canvas.addEventListener("pointermove", function (e) { if (dragging) { moveTo(e); } });
canvas.addEventListener("pointerup", function () { dragging = false; });
canvas.addEventListener("pointercancel", function () { dragging = false; });
queryInput.addEventListener("input", redraw);
widthInput.addEventListener("input", redraw);
watchSize();
redraw();
"""

_JS_SECTIONS = r"""
var widthInput = root.querySelector("input[name=width]");
redraw = function () {
  var i = Number(widthInput.value), width = data.widths[i], alpha = data.alphas[i];
  root.dataset.width = String(width);
  showValue(widthInput, "width " + fmt(width), fmt(width));
  statusLine.textContent = "Kernel width " + fmt(width) + ": the sum of " +
    data.anchors.length + " sections is " + fmt(data.rms[i]) + " (root mean square) away " +
    "from the target; its RKHS norm is " + fmt(data.norm[i]) + ".";
  var f = frame();
  if (!f) { return; }
  var ctx = f.ctx, grid = data.grid, total = grid.map(function () { return 0; });
  data.anchors.forEach(function (a, j) {
    var section = grid.map(function (g, k) {
      var v = alpha[j] * Math.exp(-(g - a) * (g - a) / (2 * width * width));
      total[k] += v;
      return v;
    });
    polyline(f, grid, section, data.colors.section, 1.2);
  });
  polyline(f, grid, data.target, data.colors.target, 1.5, [6, 4]);
  polyline(f, grid, total, data.colors.sum, 2.5);
  ctx.fillStyle = data.colors.target;
  data.anchors.forEach(function (a) {
    ctx.beginPath(); ctx.moveTo(f.X(a), f.bottom - 7); ctx.lineTo(f.X(a) + 4, f.bottom);
    ctx.lineTo(f.X(a) - 4, f.bottom); ctx.closePath(); ctx.fill();
  });
  ctx.restore();
};
widthInput.addEventListener("input", redraw);
watchSize();
redraw();
"""
