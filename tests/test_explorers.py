"""Kernel-free interactive figures: the numbers behind them, their HTML, assets, bad input.

The JavaScript itself runs in tests/test_site.py (headless Chromium), which holds the
page's arithmetic and texts to :meth:`predict`, :meth:`sections` and :meth:`texts`
tested here.
"""

import base64
import importlib.resources
import itertools
import json
import math
import os
import re
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelnotes import kernel_ridge, rkhs_norm
from kernelnotes.explorers import (
    Explorer,
    KernelSectionsExplorer,
    NadarayaWatsonExplorer,
    fill,
    nice_ticks,
    widget,
)
from kernelnotes.explorers import base as explorer_base
from kernelnotes.kernels import gaussian

F64 = torch.float64
ROOT = Path(__file__).resolve().parents[1]


def toy(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.sort(5 * torch.rand(n, generator=g, dtype=F64)).values
    return x, torch.sin(2 * x) + 0.25 * torch.randn(n, generator=g, dtype=F64)


def wave(t):
    return torch.sin(2 * math.pi * t) + 0.5 * torch.sin(5 * math.pi * t) * torch.exp(-2 * t)


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of <script> blocks."""

    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self._in_script = [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)

    def handle_data(self, data):
        if self._in_script is not None:
            self.scripts.append((self._in_script, data))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None


def parse(html):
    parser = Elements()
    parser.feed(html)
    return parser


# --- Nadaraya-Watson explorer ----------------------------------------------------------

@given(n=st.integers(1, 30), bandwidth=st.floats(0.05, 3.0), seed=st.integers(0, 10**6))
@settings(max_examples=30, deadline=None)
def test_predict_matches_the_weighted_average_written_out(n, bandwidth, seed):
    x, y = toy(n, seed)
    explorer = NadarayaWatsonExplorer(x, y, bandwidth=bandwidth)
    queries = torch.linspace(*explorer.domain, 7, dtype=F64)
    xs, ys = explorer.x_train, explorer.y_train
    expected = []
    for q in queries.tolist():
        w = torch.tensor([math.exp(-(q - xi) ** 2 / (2 * bandwidth**2)) for xi in xs.tolist()],
                         dtype=F64)
        expected.append((w * ys).sum() / w.sum() if w.sum() > 0 else ys[(xs - q).abs().argmin()])
    torch.testing.assert_close(explorer.predict(queries), torch.stack(expected),
                               rtol=1e-10, atol=1e-12)
    weights = explorer.weights(queries)
    assert weights.shape == (7, n) and (weights >= 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(7, dtype=F64), rtol=0, atol=1e-12)


def test_data_are_rounded_once_and_the_page_gets_exactly_those_numbers():
    x, y = toy()
    explorer = NadarayaWatsonExplorer(x, y, bandwidth=0.3, query=2.5)
    assert (explorer.x_train - x).abs().max() <= 1e-5 * x.abs().max()
    data = json.loads(json.dumps(explorer.payload()))
    assert data["x"] == explorer.x_train.tolist() and data["y"] == explorer.y_train.tolist()
    lo, hi = data["domain"]
    assert lo < x.min() and hi > x.max()
    assert data["bell"][0] < min(data["y"]) and data["ylim"][0] <= data["bell"][0]


def sliders(html):
    tags = parse(html).tags
    return {a["name"]: a for t, a in tags if t == "input" and a.get("type") == "range"}


@pytest.mark.parametrize("query, bandwidth", [(2.5, 0.3), (0.123, 0.07), (4.9, 2.0)])
def test_sliders_start_exactly_at_the_described_state(query, bandwidth):
    explorer = NadarayaWatsonExplorer(*toy(), bandwidth=bandwidth, query=query,
                                      domain=(-0.1, 5.1), bandwidth_range=(0.01, 2.5))
    controls = sliders(explorer._repr_html_())
    for name, value, (lo, hi) in [("query", query, explorer.domain),
                                  ("log10_bandwidth", math.log10(bandwidth),
                                   tuple(map(math.log10, explorer.bandwidth_range)))]:
        attrs = controls[name]
        start, stop, step = float(attrs["min"]), float(attrs["max"]), float(attrs["step"])
        assert float(attrs["value"]) == pytest.approx(value, abs=1e-12)
        k = (float(attrs["value"]) - start) / step
        assert abs(k - round(k)) < 1e-6, f"{name} value is off the slider's step grid"
        assert lo - 1e-9 <= start and stop <= hi + 1e-9 and stop - start > 0.9 * (hi - lo)


def test_status_counts_the_points_that_carry_the_weight():
    x = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=F64)
    explorer = NadarayaWatsonExplorer(x, x, bandwidth=0.05, query=1.0,
                                      bandwidth_range=(0.01, 200))
    narrow = explorer.status(query=1.0, log10_bandwidth=math.log10(0.05))
    assert "the estimate is 1;" in narrow and "1 of 4 points carry 90%" in narrow
    wide = explorer.status(query=1.5, log10_bandwidth=2.0)
    assert "4 of 4 points carry 90%" in wide


def test_predict_with_weights_returns_the_prediction_first():
    explorer = NadarayaWatsonExplorer(*toy(), bandwidth=0.3)
    queries = torch.tensor([0.5, 2.0, 4.5], dtype=F64)
    prediction, weights = explorer.predict_with_weights(queries)
    assert prediction.shape == (3,) and weights.shape == (3, 40)
    torch.testing.assert_close(prediction, weights @ explorer.y_train, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(prediction, explorer.predict(queries), rtol=0, atol=0)


def test_texts_fill_the_templates_the_page_fills():
    explorer = NadarayaWatsonExplorer(*toy(), bandwidth=0.3, query=2.5)
    texts = explorer.texts(query=1.25)
    assert texts["query"] == "x = 1.25" and texts["log10_bandwidth"] == "h = 0.3"
    estimate = explorer.predict(1.25).item()
    assert f"the estimate is {estimate:.3g};" in texts["status"]
    data = explorer.page_data()
    assert set(data["templates"]) == {"status", "query", "log10_bandwidth"}
    assert NadarayaWatsonExplorer.page_texts(data, {"query": 1.25,
                                                    "log10_bandwidth": math.log10(0.3)}) == texts
    with pytest.raises(ValueError, match="no slider named"):
        explorer.texts(bandwidth=0.3)
    with pytest.raises(ValueError, match="query must lie in the slider's range"):
        explorer.texts(query=99.0)
    with pytest.raises(TypeError, match="log10_bandwidth"):
        explorer.figure_png(log10_bandwidth="wide")


@pytest.mark.parametrize("value", [0.0, 1.0, -2.5, 1234.5, 0.000123456, 1e-7, 99.96, 40.0])
def test_fill_formats_numbers_as_python_does(value):
    state = {"v": value, "k": 7}
    assert fill("{v} / {v:.2f} / {k:d}", state) == f"{value:.3g} / {value:.2f} / 7"


# --- the HTML both explorers produce ---------------------------------------------------

def explorers():
    return [NadarayaWatsonExplorer(*toy(), bandwidth=0.3, query=2.5),
            KernelSectionsExplorer(wave, torch.linspace(0.05, 0.95, 10))]


@pytest.mark.parametrize("explorer", explorers(), ids=lambda e: e.kind)
def test_html_is_self_contained_accessible_and_small(explorer):
    html = explorer._repr_html_()
    assert len(html.encode()) < 40_000
    page = parse(html)
    ids = {a["id"] for _, a in page.tags if "id" in a}
    root = page.tags[0][1]
    assert page.tags[0][0] == "div" and "kn-explorer" in root["class"]
    assert root["data-kind"] == explorer.kind

    canvas = [a for t, a in page.tags if t == "canvas"]
    assert len(canvas) == 1 and canvas[0]["role"] == "img"
    assert canvas[0]["aria-labelledby"] in ids and canvas[0]["aria-describedby"] in ids
    assert explorer.description() in html  # the text alternative is on the page

    # Before any script runs (an untrusted notebook), a still image of the first state
    # and a note; the canvas and the dead sliders are hidden or disabled.
    # JupyterLab's sanitizer drops `hidden` from untrusted outputs: a 0 x 0 canvas still
    # leaves no blank box.
    assert "hidden" in canvas[0] and canvas[0]["width"] == canvas[0]["height"] == "0"
    (still,) = [a for t, a in page.tags if t == "img"]
    assert still["alt"] == explorer.description()
    png = base64.b64decode(still["src"].removeprefix("data:image/png;base64,"))
    assert png == explorer.figure_png() and png.startswith(b"\x89PNG")
    assert "run this cell" in html

    labels = {a["for"] for t, a in page.tags if t == "label"}
    inputs = [a for t, a in page.tags if t == "input"]
    assert inputs and all(a["id"] in labels and a.get("aria-valuetext") for a in inputs)
    assert all("disabled" in a for a in inputs)
    texts = explorer.texts()
    assert {a["name"]: a["aria-valuetext"] for a in inputs} == {
        name: text for name, text in texts.items() if name != "status"}
    assert {a["for"] for t, a in page.tags if t == "output"} == {a["id"] for a in inputs}
    status = [a for _, a in page.tags if a.get("role") == "status"]
    assert len(status) == 1 and status[0]["aria-live"] == "polite"
    assert html.count(texts["status"]) == 1  # the no-script fallback, from the templates

    data = [text for attrs, text in page.scripts if attrs.get("type") == "application/json"]
    assert len(data) == 1 and json.loads(data[0]) == json.loads(json.dumps(explorer.page_data()))
    code = " ".join(text for attrs, text in page.scripts if "type" not in attrs)
    # Nothing fetched, nothing random, nothing global: the output works offline and is
    # identical on every run.
    assert not re.search(r"https?:|fetch\(|XMLHttpRequest|import\(|Math\.random|Date", html)
    assert code.lstrip().startswith("(function (root)")


@pytest.mark.parametrize("explorer", explorers(), ids=lambda e: e.kind)
def test_html_is_deterministic_and_ids_are_unique_per_render(explorer, monkeypatch):
    monkeypatch.setattr(explorer_base, "_renders", explorer_base.Counter())
    first, second = explorer._repr_html_(), explorer._repr_html_()
    first_id = parse(first).tags[0][1]["id"]
    assert parse(second).tags[0][1]["id"] == first_id + "-1"
    assert second == first.replace(first_id, first_id + "-1")
    monkeypatch.setattr(explorer_base, "_renders", explorer_base.Counter())
    assert explorer._repr_html_() == first
    assert "0x" not in repr(explorer) and explorer.description() in repr(explorer)


def test_different_data_get_different_ids():
    a = NadarayaWatsonExplorer(*toy(seed=1), bandwidth=0.3)._repr_html_()
    b = NadarayaWatsonExplorer(*toy(seed=2), bandwidth=0.3)._repr_html_()
    assert parse(a).tags[0][1]["id"] != parse(b).tags[0][1]["id"]


# --- kernel-sections explorer ----------------------------------------------------------

def test_sections_sum_to_the_kernel_ridge_fit_at_every_width():
    anchors = torch.linspace(0.05, 0.95, 10, dtype=F64)
    explorer = KernelSectionsExplorer(wave, anchors, lam=1e-2)
    x = torch.linspace(0, 1, 37, dtype=F64)
    for i, width in enumerate(explorer.widths.tolist()):
        fit = kernel_ridge(anchors[:, None], wave(anchors), gaussian, 1e-2, bandwidth=width)
        sections = explorer.sections(x, i)
        assert sections.shape == (37, 10)
        # Coefficients are rounded to 7 significant digits for the page.
        scale = fit.alpha.abs().max()
        torch.testing.assert_close(explorer.alphas[i], fit.alpha, rtol=0, atol=1e-6 * scale)
        torch.testing.assert_close(sections.sum(-1), fit(x[:, None]), rtol=0,
                                   atol=1e-5 * scale)
        loop = [[alpha * math.exp(-(t - a) ** 2 / (2 * width**2))
                 for alpha, a in zip(explorer.alphas[i].tolist(), explorer.anchors.tolist(),
                                     strict=True)]
                for t in x.tolist()]
        torch.testing.assert_close(sections, torch.tensor(loop, dtype=F64), rtol=1e-12,
                                   atol=1e-14)
    torch.testing.assert_close(
        explorer.norms(),
        torch.stack([rkhs_norm(f.alpha, f.K) for f in explorer.fits]))


def test_narrow_sections_are_local_and_wide_ones_pool():
    anchors = torch.linspace(0.05, 0.95, 10, dtype=F64)
    explorer = KernelSectionsExplorer(wave, anchors, widths=[0.02, 0.3])
    narrow, wide = explorer.sections(anchors, 0), explorer.sections(anchors, 1)
    # At each anchor, the share of the prediction that comes from its own section.
    own = [(s.diagonal().abs() / s.abs().sum(-1)).min().item() for s in (narrow, wide)]
    assert own[0] > 0.99 and own[1] < 0.5
    payload = explorer.payload()
    assert payload["widths"] == [0.02, 0.3] and len(payload["alphas"]) == 2
    assert len(payload["grid"]) == len(payload["target"]) == 241


def test_payload_ylim_covers_the_target_and_every_fitted_sum():
    explorer = KernelSectionsExplorer(wave, torch.linspace(0.05, 0.95, 10))
    lo, hi = explorer.payload()["ylim"]
    for i in range(len(explorer.widths)):
        total = explorer.sections(explorer.grid, i).sum(-1)
        assert lo < total.min() and total.max() < hi
    assert lo < explorer.target_values.min() and explorer.target_values.max() < hi


@given(lo=st.floats(-1e3, 1e3), span=st.floats(1e-3, 1e4), max_ticks=st.integers(5, 9))
@settings(max_examples=50, deadline=None)
def test_nice_ticks_are_evenly_spaced_round_numbers_inside_the_range(lo, span, max_ticks):
    hi = lo + span
    ticks = nice_ticks(lo, hi, max_ticks)
    assert 2 <= len(ticks) <= max_ticks
    assert lo - 1e-9 * span <= ticks[0] and ticks[-1] <= hi + 1e-9 * span
    steps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(steps) - min(steps) <= 1e-6 * steps[0]
    mantissa = steps[0] / 10 ** math.floor(math.log10(steps[0]) + 1e-9)
    assert any(abs(mantissa - m) < 1e-6 for m in (1, 2, 2.5, 5))


# --- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    ({"y_train": torch.zeros(5, dtype=F64)}, ValueError, "x_train and y_train"),
    ({"bandwidth": 0.0}, ValueError, "bandwidth"),
    ({"bandwidth": "wide"}, TypeError, "bandwidth"),
    ({"query": 9.0}, ValueError, "query"),
    ({"bandwidth": 0.3, "bandwidth_range": (0.5, 1.0)}, ValueError, "bandwidth_range"),
    ({"bandwidth_range": (-1.0, 1.0)}, ValueError, "bandwidth_range"),
    ({"domain": (2.0, 1.0)}, ValueError, "domain"),
    ({"domain": "wide"}, TypeError, "domain"),
    ({"x_train": torch.full((40,), float("nan"), dtype=F64)}, ValueError, "x_train"),
    ({"x_train": torch.zeros(4, 2, dtype=F64)}, ValueError, "x_train"),
    ({"x_train": torch.arange(40)}, TypeError, "x_train"),
    ({"query": "middle"}, TypeError, "query"),
    ({"query": float("nan")}, ValueError, "query"),
])
def test_nadaraya_watson_explorer_rejects_bad_input(kwargs, error, match):
    x, y = toy()
    args = {"x_train": x, "y_train": y, "bandwidth": 0.3, **kwargs}
    with pytest.raises(error, match=match):
        NadarayaWatsonExplorer(**args)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"target": 3.0}, TypeError, "target"),
    ({"target": lambda t: t[:-1]}, ValueError, "target"),
    ({"target": lambda t: t / 0}, ValueError, "target"),
    ({"target": lambda t: "wave"}, TypeError, "target"),
    ({"target": lambda t: t.long()}, TypeError, "target"),
    ({"widths": [0.1, 0.05]}, ValueError, "widths"),
    ({"widths": [-0.1, 0.05]}, ValueError, "widths"),
    ({"width_index": 30}, ValueError, "width_index"),
    ({"width_index": 2.5}, TypeError, "width_index"),
    ({"lam": -1.0}, ValueError, "lam"),
    ({"grid_size": 1}, ValueError, "grid_size"),
    ({"anchors": []}, ValueError, "anchors"),
])
def test_sections_explorer_rejects_bad_input(kwargs, error, match):
    args = {"target": wave, "anchors": torch.linspace(0.05, 0.95, 10), **kwargs}
    with pytest.raises(error, match=match):
        KernelSectionsExplorer(**args)


def test_sections_reject_a_width_index_off_the_slider():
    explorer = KernelSectionsExplorer(wave, torch.linspace(0.05, 0.95, 10))
    with pytest.raises(ValueError, match="width_index"):
        explorer.sections(torch.zeros(3, dtype=F64), 99)


def test_widget_redraws_from_python_when_a_slider_moves():
    x = torch.linspace(0, 5, 25, dtype=torch.float64)
    explorer = NadarayaWatsonExplorer(x, torch.sin(x), bandwidth=0.4, query=1.0)
    box = explorer.widget()
    (query, bandwidth), image, status = box.children[0].children, *box.children[1:]
    (query, query_text), (bandwidth, bandwidth_text) = query.children, bandwidth.children
    assert bytes(image.value) == explorer.figure_png()
    assert status.value == explorer.status() and query_text.value == "x = 1"
    query.value = 3.0
    assert bytes(image.value) == explorer.figure_png(query=3.0)
    assert status.value == explorer.status(query=3.0) and query_text.value == "x = 3"
    bandwidth.value = 0.0
    assert status.value == explorer.status(query=3.0, log10_bandwidth=0.0)
    assert bandwidth_text.value == "h = 1"


def test_widget_works_for_every_explorer_and_refuses_anything_else():
    explorer = KernelSectionsExplorer(wave, torch.linspace(0.05, 0.95, 10))
    box = widget(explorer)
    ((slider, text),) = (control.children for control in box.children[0].children)
    slider.value = 2
    assert box.children[2].value == explorer.status(width=2)
    assert text.value == f"{explorer.widths[2].item():.3g}"
    with pytest.raises(TypeError, match="explorer"):
        widget("figure")


# --- assets: package data, read once, in the wheel --------------------------------------

def test_every_explorer_has_its_assets_in_the_package():
    files = importlib.resources.files("kernelnotes.explorers")
    assert set(Explorer.registry) >= {"nadaraya-watson", "kernel-sections"}
    for name in ["explorer.css", "explorer.js"] + [c.script for c in Explorer.registry.values()]:
        assert files.joinpath(name).is_file(), name
    for explorer in explorers():
        html = explorer._repr_html_()
        shared = explorer_base.asset("explorer.js").split("// EXPLORER SCRIPT")
        for text in [explorer_base.asset("explorer.css"), *shared[:1],
                     explorer_base.asset(explorer.script), shared[1].split("ROOT_ID")[0]]:
            assert text.strip() in html


def test_no_python_file_in_the_package_holds_javascript_or_css():
    package = ROOT / "kernelnotes"
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found = re.findall(r"addEventListener|getContext|function\s*\w*\s*\([\w, ]*\)\s*\{|"
                           r"\bvar \w+ =|"
                           r"[\w-]+\s*:\s*[\w#.-]+;\s*[\w-]+\s*:", text)
        assert not found, f"{path.relative_to(ROOT)} holds page code: {found[:3]}"


RENDER = """
import json, sys, torch
from kernelnotes.explorers import KernelSectionsExplorer, NadarayaWatsonExplorer
x = torch.linspace(0, 5, 30, dtype=torch.float64)
figures = [NadarayaWatsonExplorer(x, torch.sin(x), bandwidth=0.4),
           KernelSectionsExplorer(torch.cos, torch.linspace(0, 3, 8))]
import kernelnotes
print(json.dumps([kernelnotes.__file__] + [f._repr_html_() for f in figures]))
"""


def built_wheel(directory: Path) -> Path:
    """The wheel `make test` has just built from this tree (it says so by setting
    KERNELNOTES_WHEEL_ENV), or else one built now into ``directory``."""
    if os.environ.get("KERNELNOTES_WHEEL_ENV"):
        (wheel,) = (ROOT / "_build" / "dist").glob("kernelnotes-*.whl")
        return wheel
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(directory), str(ROOT)],
                   check=True, cwd=directory, capture_output=True)
    (wheel,) = directory.glob("kernelnotes-*.whl")
    return wheel


def test_a_wheel_ships_the_assets_and_renders_identically(tmp_path):
    """Unpack the wheel (an installation without editable paths) and render the same
    figures from it and from this tree, each in a fresh interpreter."""
    wheel = built_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    for asset in ["explorer.css", "explorer.js", "nadaraya_watson.js", "kernel_sections.js"]:
        assert f"kernelnotes/explorers/{asset}" in names
    zipfile.ZipFile(wheel).extractall(tmp_path / "installed")

    def render(path):
        out = subprocess.run([sys.executable, "-c", RENDER], env={"PYTHONPATH": str(path)},
                             check=True, capture_output=True, text=True, cwd=tmp_path)
        return json.loads(out.stdout)

    from_wheel, from_tree = render(tmp_path / "installed"), render(ROOT)
    assert from_wheel[0].startswith(str(tmp_path / "installed"))
    assert from_tree[0].startswith(str(ROOT))
    assert from_wheel[1:] == from_tree[1:]


def test_an_explorer_without_its_methods_cannot_be_made():
    class Unfinished(Explorer):
        kind = "unfinished-test"
        script = "explorer.js"
        status_template = "{x}"

    Explorer.registry.pop("unfinished-test")
    with pytest.raises(TypeError, match="abstract"):
        Unfinished()
