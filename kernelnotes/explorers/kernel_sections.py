"""Source A's kernel-sections figure: one kernel-ridge fit per width on a slider."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from .._validation import as_tensor, check_index
from ..kernels import gaussian
from ..plotting import KERNEL_COLOR
from ..rkhs import kernel_ridge
from .base import F64, Explorer, Slider, nice_ticks, points, round_values, value_range

__all__ = ["KernelSectionsExplorer"]

TARGET_COLOR = "#222222"
SECTION_COLOR = "#f4b183"


class KernelSectionsExplorer(Explorer):
    """Source A's kernel-sections figure with a width slider, interactive with no kernel.

    A target function (dashed) is fitted by kernel ridge regression with a Gaussian kernel
    centred at fixed anchors, ``f = sum_j alpha_j k(., a_j)``, once for each width on the
    slider (:func:`kernelnotes.rkhs.kernel_ridge`). The figure draws the sum (orange), the
    individual sections ``alpha_j k(., a_j)`` (light) and the target; moving the slider
    (``width``, the index of a width) switches between the precomputed fits.

    Parameters
    ----------
    target : callable mapping a float64 tensor of points ``(m,)`` to floating-point values
        ``(m,)`` (a tensor, numpy array or list).
    anchors : ``(n,)`` centres of the kernel sections (the training inputs of the fit).
    widths : increasing kernel widths (bandwidths) for the slider; defaults to 25 values
        log-spaced from 2% to 50% of the domain's length.
    lam : ridge penalty of the fits (``>= 0``).
    width_index : the slider's initial position; defaults to the middle.
    domain : ``(lo, hi)`` of the x axis; defaults to the anchors' range padded by 5%.
    grid_size : how many points sample the target for the dashed curve.
    title : the figure's heading, also its accessible name.
    """

    kind = "kernel-sections"
    script = "kernel_sections.js"
    status_template = ("Kernel width {width}: the sum of {n:d} sections is {rms} (root mean "
                       "square) away from the target; its RKHS norm is {norm}.")

    def __init__(self, target, anchors, *, widths=None, lam=1e-2, width_index=None,
                 domain=None, grid_size=241, title="Kernel sections: change the width"):
        if not callable(target):
            raise TypeError(f"target must be callable, got {type(target).__name__}")
        anchors = torch.tensor(round_values(points(anchors, "anchors")), dtype=F64)
        lo, hi = anchors.min().item(), anchors.max().item()
        span = (hi - lo) or 1.0
        self.domain = (value_range(domain, "domain") if domain is not None
                       else (lo - 0.05 * span, hi + 0.05 * span))
        length = self.domain[1] - self.domain[0]
        if widths is None:
            widths = torch.logspace(math.log10(0.02 * length), math.log10(0.5 * length), 25,
                                    dtype=F64)
        widths = points(widths, "widths")
        if (widths <= 0).any() or (widths.diff() <= 0).any():
            raise ValueError("widths must be positive and strictly increasing")
        if isinstance(grid_size, bool) or not isinstance(grid_size, int) or grid_size < 2:
            raise ValueError(f"grid_size must be an integer >= 2, got {grid_size!r}")
        self.anchors = anchors
        self.widths = torch.tensor(round_values(widths), dtype=F64)
        if len(set(self.widths.tolist())) != self.widths.numel():
            raise ValueError("widths must differ in their first 6 significant digits")
        self.width_index = (len(self.widths) // 2 if width_index is None
                            else check_index(width_index, "width_index", len(self.widths)))
        self.grid = torch.linspace(*self.domain, grid_size, dtype=F64)
        self.target_values = self._call_target(target, self.grid, "grid")
        anchor_targets = self._call_target(target, anchors, "anchors")
        self.fits = [kernel_ridge(anchors[:, None], anchor_targets, gaussian, lam,
                                  bandwidth=w) for w in self.widths.tolist()]
        # The page works with coefficients rounded to 7 digits: keep exactly those.
        self.alphas = torch.tensor([round_values(fit.alpha, 7) for fit in self.fits], dtype=F64)
        self.lam = float(lam)
        self.title = str(title)

    @staticmethod
    def _call_target(target, points, name):
        # The shared check: a TypeError naming target if it returns no real numbers.
        values = as_tensor(target(points), f"target({name})").to(F64)
        if values.shape != points.shape or not torch.isfinite(values).all():
            raise ValueError(f"target must map the {name} {tuple(points.shape)} to as many "
                             f"finite values, got shape {tuple(values.shape)}")
        return values

    # --- the numbers -------------------------------------------------------------------

    def sections(self, x, width_index=None) -> torch.Tensor:
        """Each section ``alpha_j k(x, a_j)`` at the points ``x``: shape ``(m, n)``.

        Summing over the last axis gives the fitted function at ``x``; these are the
        numbers the page draws for that slider position.
        """
        i = (self.width_index if width_index is None
             else check_index(width_index, "width_index", len(self.widths)))
        x = as_tensor(x, "x").to(F64).reshape(-1, 1)
        return gaussian(x, self.anchors[:, None], self.widths[i].item()) * self.alphas[i]

    def rms_errors(self) -> torch.Tensor:
        """Root-mean-square distance between the fit and the target over the grid, per width."""
        return ((self._fitted() - self.target_values) ** 2).mean(-1).sqrt()

    def norms(self) -> torch.Tensor:
        """RKHS norm ``sqrt(alpha^T K alpha)`` of the fit at each width."""
        return torch.stack([fit.norm() for fit in self.fits])

    def _fitted(self) -> torch.Tensor:
        """The fitted sums on the grid, one row per width."""
        return torch.stack([self.sections(self.grid, i).sum(-1)
                            for i in range(len(self.widths))])

    @classmethod
    def state(cls, data: dict, values: Mapping[str, float]) -> dict:
        i = round(float(values["width"]))
        return {"width": data["widths"][i], "n": len(data["anchors"]), "rms": data["rms"][i],
                "norm": data["norm"][i]}

    # --- the page ----------------------------------------------------------------------

    def description(self) -> str:
        return (
            f"Interactive chart: a dashed target function, its approximation (orange) as a "
            f"sum of {self.anchors.numel()} Gaussian kernel sections centred at fixed "
            "anchors marked on the axis, and the individual sections as light curves. A "
            "slider sets the kernel width: narrow sections are local bumps; wide ones "
            "overlap, and at the widest the fit adds large sections of both signs that "
            "cancel."
        )

    def sliders(self) -> list[Slider]:
        return [Slider("width", "kernel width", "{width}", 0, len(self.widths) - 1, 1,
                       self.width_index)]

    def payload(self) -> dict:
        fitted = self._fitted()
        lo = min(self.target_values.min().item(), fitted.min().item())
        hi = max(self.target_values.max().item(), fitted.max().item())
        pad = 0.12 * ((hi - lo) or 1.0)
        return {
            "anchors": self.anchors.tolist(),
            "widths": self.widths.tolist(),
            "alphas": self.alphas.tolist(),
            "grid": round_values(self.grid, 7),
            "target": round_values(self.target_values, 5),
            "rms": round_values(self.rms_errors(), 3),
            "norm": round_values(self.norms(), 3),
            "domain": round_values(self.domain),
            "ylim": round_values([lo - pad, hi + pad]),
            "xticks": nice_ticks(*self.domain),
            "yticks": nice_ticks(lo - pad, hi + pad, 7),
            "colors": {"sum": KERNEL_COLOR, "section": SECTION_COLOR, "target": TARGET_COLOR},
        }

    def draw(self, ax, values: Mapping[str, float]) -> None:
        i = round(values["width"])
        sections = self.sections(self.grid, i)
        ax.plot(self.grid, sections, color=SECTION_COLOR, linewidth=1)
        ax.plot(self.grid, self.target_values, color=TARGET_COLOR, linestyle="--",
                linewidth=1.5, label="target")
        ax.plot(self.grid, sections.sum(-1), color=KERNEL_COLOR, linewidth=2.5,
                label=f"sum of sections, width {self.widths[i].item():.3g}")
        ax.plot(self.anchors, torch.zeros_like(self.anchors), "^", color=TARGET_COLOR,
                transform=ax.get_xaxis_transform(), clip_on=False)
        ax.set_xlim(*self.domain)
        ax.legend(loc="upper right", fontsize=8)

    def __repr__(self) -> str:
        return (f"KernelSectionsExplorer(n_anchors={self.anchors.numel()}, "
                f"widths={len(self.widths)}, lam={self.lam:g}): {self.description()}")
