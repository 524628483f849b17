"""What every explorer shares: sliders, texts, the page frame, the assets.

An explorer is an interactive figure that needs no Python kernel. Its ``_repr_html_`` is
one self-contained ``<div>``: a title, a still PNG of the initial state (what a notebook
shows before its scripts may run), a ``<canvas>`` that replaces it, a hidden text
description, labelled range sliders, an ``aria-live`` status sentence, the figure's data as
JSON and one inline script. The CSS and JavaScript are package data (``explorer.css``,
``explorer.js`` and one script per explorer), read once per process and inlined, so the
output works in JupyterLab, on a static page and from a file, and fetches nothing.

The HTML is deterministic: element ids come from a hash of the data plus a per-process
render counter, never from random numbers, so re-executing a notebook reproduces its
output byte for byte (strict nbval compares HTML outputs as text).
"""

from __future__ import annotations

import abc
import base64
import functools
import hashlib
import html
import importlib.resources
import io
import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from .._validation import as_tensor, check_finite

__all__ = ["Explorer", "Slider", "fill", "nice_ticks"]

F64 = torch.float64

# How many times each data hash has been rendered in this process: the second display of
# the same figure on one page gets a distinct id.
_renders: Counter[str] = Counter()

_PLACEHOLDER = re.compile(r"\{(\w+)(?::([^}]*))?\}")


@functools.cache
def asset(name: str) -> str:
    """The text of a CSS or JavaScript file shipped in this package (read once)."""
    return importlib.resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def fill(template: str, state: Mapping[str, float]) -> str:
    """Fill ``{name}`` (3 significant digits), ``{name:.2f}`` or ``{name:d}`` placeholders.

    The page's script has the same function (``fill`` in ``explorer.js``); the browser
    test holds the two to the same text after every slider move.
    """
    def number(match: re.Match) -> str:
        value = state[match[1]]
        return format(value if match[2] == "d" else value + 0.0, match[2] or ".3g")

    return _PLACEHOLDER.sub(number, template)


@dataclass(frozen=True)
class Slider:
    """One range input: ``name`` keys its value in ``values``; ``text`` is the template of
    the value it shows and speaks (``aria-valuetext``), filled from the state."""

    name: str
    label: str
    text: str
    lo: float
    hi: float
    step: float
    value: float

    @classmethod
    def aligned(cls, name: str, label: str, text: str, bounds: tuple[float, float],
                step: float, value: float) -> Slider:
        """A slider inside ``bounds`` whose step grid passes exactly through ``value``
        (a range input snaps its value to ``min + k * step``), so the page starts from the
        very state Python describes."""
        lo, hi = bounds
        below = math.floor((value - lo) / step + 1e-9)
        above = math.floor((hi - value) / step + 1e-9)
        return cls(name, label, text, value - below * step, value + above * step, step, value)

    def html(self, uid: str, text: str) -> str:
        """The labelled input showing ``text``; disabled until the page's script runs
        (without it, moving the slider would change nothing)."""
        ident, text = f"{uid}-{self.name}", html.escape(text)
        return (
            f'<div class="kn-control"><label for="{ident}">{html.escape(self.label)}</label>'
            f'<input type="range" id="{ident}" name="{self.name}" min="{self.lo!r}" '
            f'max="{self.hi!r}" step="{self.step!r}" value="{self.value!r}" '
            f'aria-valuetext="{text}" disabled>'
            f'<output for="{ident}" id="{ident}-value">{text}</output></div>'
        )


class Explorer(abc.ABC):
    """Base class of the interactive figures.

    To add an explorer, write one module with a subclass and one script next to it:

    - class attributes ``kind`` (the root's ``data-kind``, e.g. ``"training-replay"``),
      ``script`` (the file name of its JavaScript in this package, e.g.
      ``"training_replay.js"``; add nothing to ``pyproject.toml``: every ``*.js`` here is
      package data) and ``status_template``, the sentence under the figure, e.g.
      ``"Step {step:d}: the loss is {loss}."``;
    - ``title`` (instance attribute), ``description()`` (the text alternative: what the
      figure shows and how to operate it), ``sliders()`` (a list of :class:`Slider`),
      ``payload()`` (a JSON-able dict: everything the script draws; ``domain``, ``ylim``,
      ``xticks`` and ``yticks`` if it uses the shared ``frame()`` axes), the classmethod
      ``state(data, values)`` (the numbers the templates name, computed from the page data
      and the slider values alone: the browser test calls it for the page it sees) and
      ``draw(ax, values)`` (the same state drawn on matplotlib axes: the still image and
      :func:`kernelnotes.explorers.widget` show it);
    - the script defines ``state(values)``, computing the same numbers as the Python
      ``state`` from ``data`` (the payload), and ``draw(f, s)``, drawing on the frame ``f``
      (see ``explorer.js`` for the helpers: ``frame``, ``polyline``, ``linspace``,
      ``setSlider``). It formats no text: every text is a template filled by ``fill``.

    The status sentence and slider texts are therefore written once, as templates; the page
    fills them on every move (and for the first state) and Python fills the same templates
    for the no-script fallback and for :meth:`texts`.
    """

    kind: ClassVar[str]
    script: ClassVar[str]
    status_template: ClassVar[str]
    title: str

    registry: ClassVar[dict[str, type[Explorer]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            Explorer.registry[cls.kind] = cls

    @abc.abstractmethod
    def description(self) -> str:
        """Text alternative of the figure."""

    @abc.abstractmethod
    def sliders(self) -> list[Slider]:
        """The controls, at their initial values."""

    @abc.abstractmethod
    def payload(self) -> dict:
        """The data the page's script reads (everything it draws is computed from this)."""

    @classmethod
    @abc.abstractmethod
    def state(cls, data: dict, values: Mapping[str, float]) -> dict:
        """The numbers the texts name, from the page data and the slider values."""

    @abc.abstractmethod
    def draw(self, ax, values: Mapping[str, float]) -> None:
        """Draw the state for these slider values (all of them) on matplotlib axes."""

    # --- provided ---------------------------------------------------------------------

    def page_data(self) -> dict:
        """The JSON the page carries: the payload plus the text templates."""
        templates = {"status": self.status_template}
        templates.update({slider.name: slider.text for slider in self.sliders()})
        return {**self.payload(), "templates": templates}

    @classmethod
    def page_texts(cls, data: dict, values: Mapping[str, float]) -> dict[str, str]:
        """The status sentence (key ``"status"``) and each slider's text for these values,
        from the page data alone: what the page must show."""
        state = cls.state(data, values)
        return {key: fill(template, state) for key, template in data["templates"].items()}

    def slider_values(self, **values: float) -> dict[str, float]:
        """Every slider's value: those given (checked against the slider's range), the
        initial value for the others."""
        sliders = {slider.name: slider for slider in self.sliders()}
        unknown = set(values) - set(sliders)
        if unknown:
            raise ValueError(f"no slider named {sorted(unknown)}; the sliders are "
                             f"{list(sliders)}")
        checked = {name: slider.value for name, slider in sliders.items()}
        for name, value in values.items():
            value, slider = check_finite(value, name), sliders[name]
            if not slider.lo <= value <= slider.hi:
                raise ValueError(f"{name} must lie in the slider's range [{slider.lo}, "
                                 f"{slider.hi}], got {value}")
            checked[name] = value
        return checked

    def texts(self, **values: float) -> dict[str, str]:
        """The status sentence (``"status"``) and each slider's text for these slider
        values; sliders not named keep their initial value."""
        return self.page_texts(self.page_data(), self.slider_values(**values))

    def figure_png(self, **values: float) -> bytes:
        """The figure for these slider values drawn with matplotlib, as a small PNG."""
        values = self.slider_values(**values)
        from matplotlib.figure import Figure  # no pyplot: no global figure state

        fig = Figure(figsize=(7.2, 4.0), layout="tight")
        self.draw(fig.subplots(), values)
        return png_bytes(fig, dpi=80)

    def status(self, **values: float) -> str:
        """The sentence the figure shows (and announces to screen readers) for a state."""
        return self.texts(**values)["status"]

    def widget(self):
        """The same figure driven from Python by ipywidgets (see :mod:`.widgets`)."""
        from .widgets import widget

        return widget(self)

    def _repr_html_(self) -> str:
        data, sliders = self.page_data(), self.sliders()
        start = {slider.name: slider.value for slider in sliders}
        uid = _element_id(self.kind, json.dumps([data, start]))
        texts = self.page_texts(data, start)
        controls = "".join(slider.html(uid, texts[slider.name]) for slider in sliders)
        # "<" escaped so that no "</script>" can end the data block early.
        data_json = json.dumps(data, separators=(",", ":"), allow_nan=False)
        data_json = data_json.replace("<", "\\u003c")
        return (
            f'<div class="kn-explorer" id="{uid}" data-kind="{self.kind}">'
            f"<style>{asset('explorer.css')}</style>"
            f'<p class="kn-title" id="{uid}-title">{html.escape(self.title)}</p>'
            f"{self._still_image()}"
            f'<p class="kn-note">Interactive figure: run this cell (or trust the notebook) '
            f"to use its controls.</p>"
            f'<canvas hidden width="0" height="0" role="img" '
            f'aria-labelledby="{uid}-title" aria-describedby="{uid}-desc"></canvas>'
            f'<p class="kn-desc" id="{uid}-desc">{html.escape(self.description())}</p>'
            f'<div class="kn-controls">{controls}</div>'
            f'<p class="kn-status" id="{uid}-status" role="status" aria-live="polite">'
            f"{html.escape(texts['status'])}</p>"
            f'<script type="application/json" class="kn-data">{data_json}</script>'
            f"<script>{self._script(uid)}</script>"
            f"</div>"
        )

    def _script(self, uid: str) -> str:
        """The shared script with this explorer's script and root id put in."""
        return (asset("explorer.js").replace("// EXPLORER SCRIPT", asset(self.script))
                .replace('"ROOT_ID"', json.dumps(uid)))

    def _still_image(self) -> str:
        """The first state as an ``<img>``, or nothing where matplotlib is missing."""
        try:
            png = self.figure_png()
        except ImportError:
            return ""
        return (f'<img class="kn-still" src="data:image/png;base64,'
                f'{base64.b64encode(png).decode("ascii")}" '
                f'alt="{html.escape(self.description())}">')


def _element_id(kind: str, payload: str) -> str:
    digest = hashlib.sha1(f"{kind}:{payload}".encode()).hexdigest()[:10]
    n = _renders[digest]
    _renders[digest] += 1
    return f"kn-{kind}-{digest}" + (f"-{n}" if n else "")


# --- helpers for the explorers' constructors and payloads --------------------------------

def round_values(values, digits: int = 6) -> list[float]:
    """Round to ``digits`` significant digits: short JSON, and identical text on every
    machine as long as the float64 inputs agree to that precision."""
    return [float(f"{v:.{digits}g}") for v in torch.as_tensor(values).reshape(-1).tolist()]


def nice_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """Round tick positions inside ``[lo, hi]``: multiples of 1, 2, 2.5 or 5 times a power
    of ten, at most ``max_ticks`` of them."""
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"need finite lo < hi, got lo={lo}, hi={hi}")
    raw = (hi - lo) / max(max_ticks - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    k = math.ceil(lo / step - 1e-9)
    ticks = []
    while k * step <= hi + 1e-9 * step:
        ticks.append(float(f"{k * step:.10g}") + 0.0)  # + 0.0 turns -0.0 into 0.0
        k += 1
    return ticks


def points(values, name: str) -> torch.Tensor:
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


def value_range(pair, name: str) -> tuple[float, float]:
    """``(lo, hi)`` as floats, finite with ``lo < hi``."""
    try:
        lo, hi = (float(v) for v in pair)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair of numbers (lo, hi), got {pair!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be finite with lo < hi, got ({lo}, {hi})")
    return lo, hi


def png_bytes(fig, dpi: int) -> bytes:
    """A matplotlib figure as a small PNG, identical run to run: 32 colours (a still image
    inlined in every saved notebook and page should weigh kilobytes), no version stamp."""
    from PIL import Image  # a dependency of matplotlib

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    image = Image.open(buffer).convert("RGB").quantize(32)
    small = io.BytesIO()
    image.save(small, format="png", optimize=True)
    return small.getvalue()
