"""The built website in a real browser: Debian's headless Chromium driven by Playwright.

``make site`` (or ``make book``) writes the site to ``_build/html``; these tests serve it on
127.0.0.1 and also open it from disk, block (and count) every request that would leave the
site, and check every page: nothing fetched from outside, no console errors, mathematics
typeset, every image loaded and described, no serious accessibility violation (axe-core, in
light and dark mode), every interactive figure redrawn when its controls move, no sideways
scrolling at phone width, a download button on every chapter. With KERNELNOTES_SCREENSHOTS
set (`make screenshots`), full-page screenshots (desktop, dark, phone) land in
``_build/screenshots/`` for a person to look at.

New chapters are checked automatically: the pages are whatever the build produced."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import torch

from kernelnotes import gaussian, nadaraya_watson
from kernelnotes.explorers import Explorer, KernelSectionsExplorer, NadarayaWatsonExplorer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
# KERNELNOTES_SITE points the checks at a site built elsewhere (default: `make book`'s).
SITE = Path(os.environ.get("KERNELNOTES_SITE", ROOT / "_build" / "html")).resolve()
SHOTS = SITE.parent / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-default-apps",
               "--disable-extensions", "--mute-audio"]
DESKTOP = {"width": 1280, "height": 900}
# The narrowest phone in common use: no page may scroll sideways at this width.
PHONE = {"width": 320, "height": 720}
NOT_PAGES = {"_static", "_sources", "_images", "_sphinx_design_static"}


def site_pages() -> list[str]:
    if not SITE.is_dir():
        return []
    return sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html")
                  if not NOT_PAGES.intersection(p.relative_to(SITE).parts))


PAGES = site_pages()
CHAPTERS = [p for p in PAGES if (SITE / "_sources" / p).with_suffix(".ipynb").is_file()]
MISSING = f"{SITE} is missing: build the book first (`make book`, or `make test` does it)"


def test_the_site_was_built():
    assert (SITE / "index.html").is_file(), MISSING
    assert any(p.startswith("book/") for p in PAGES), f"no chapter pages under {SITE}/book"


# --- fixtures: a local server and one browser for the whole module -----------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    """Serve ``directory`` (default: the built site) on 127.0.0.1 from a thread."""
    servers = []

    def start(directory=SITE) -> str:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_port}/"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`make test` runs "
                    f"`make chromium`, which does it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


class Visit:
    """One browser context whose requests outside ``base`` are blocked and recorded, with
    the console errors, failed loads and HTTP errors it saw."""

    def __init__(self, browser, base: str, viewport: dict):
        self.base = base
        self.outside, self.errors, self.broken = [], [], []
        self.context = browser.new_context(viewport=viewport, service_workers="block")
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        self.page.on("requestfailed", self._failed)
        self.page.on("response", self._response)

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.base) or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def _console(self, message):
        if message.type == "error":
            self.errors.append(message.text)

    def _failed(self, request):
        # A load cut short by leaving the page (net::ERR_ABORTED) is not a missing file.
        if request.url.startswith(self.base) and "ERR_ABORTED" not in str(request.failure):
            self.broken.append(f"{request.url} ({request.failure})")

    def _response(self, response):
        if response.url.startswith(self.base) and response.status >= 400:
            self.broken.append(f"{response.url} (HTTP {response.status})")

    def open(self, path: str):
        self.page.goto(self.base + path, wait_until="networkidle")
        # MathJax typesets after load; its startup promise settles when it is done.
        self.page.evaluate("""async () => {
            if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
                await MathJax.startup.promise;
            }
        }""")
        return self.page

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser, server):
    visits = []

    def make(viewport=DESKTOP, directory=SITE, from_disk=False):
        base = directory.as_uri() + "/" if from_disk else server(directory)
        v = Visit(browser, base, viewport)
        visits.append(v)
        return v

    yield make
    for v in visits:
        v.close()


# --- what every page must satisfy -------------------------------------------------------

RAW_MATH = re.compile(r"\$\$|\\\(|\\\[|\$[^$\n]*\\[A-Za-z]+[^$\n]*\$")

PAGE_TEXT_OUTSIDE_CODE = """() => {
    const copy = document.body.cloneNode(true);
    copy.querySelectorAll("pre, code, script, style, textarea, mjx-container, .kn-data")
        .forEach(e => e.remove());
    return copy.textContent;
}"""

IMAGES = """async () => {
    window.scrollTo(0, document.body.scrollHeight);
    const images = Array.from(document.images);
    images.forEach(img => { img.loading = "eager"; });
    await Promise.all(images.map(img => img.complete ? null :
        new Promise(done => { img.addEventListener("load", done);
                              img.addEventListener("error", done); })));
    window.scrollTo(0, 0);
    return images.map(img => ({src: img.getAttribute("src"), width: img.naturalWidth,
                               alt: (img.getAttribute("alt") || "").trim()}));
}"""


def math_problems(page) -> list[str]:
    problems = []
    untypeset = page.evaluate("""() => Array.from(document.querySelectorAll(".math"))
        .filter(e => !e.querySelector("mjx-container")).length""")
    if untypeset:
        problems.append(f"{untypeset} formulas not typeset by MathJax")
    if page.locator("mjx-merror").count():
        problems.append(f"{page.locator('mjx-merror').count()} TeX errors (mjx-merror)")
    raw = RAW_MATH.findall(page.evaluate(PAGE_TEXT_OUTSIDE_CODE))
    if raw:
        problems.append(f"raw TeX left in the text: {raw[:3]}")
    return problems


def image_problems(page) -> list[str]:
    problems = []
    for image in page.evaluate(IMAGES):
        if image["width"] == 0:
            problems.append(f"image did not load: {image['src']}")
        if not image["alt"]:
            problems.append(f"image without alt text: {image['src']}")
    return problems


def canvas_pixels(page, explorer) -> str:
    return explorer.locator("canvas").evaluate("c => c.toDataURL()")


SHOWN_TEXTS = """root => {
    const texts = {status: root.querySelector(".kn-status").textContent};
    root.querySelectorAll("input[type=range]").forEach(input => {
        texts[input.name] = root.querySelector("output[for='" + input.id + "']").textContent;
        texts[input.name + " (spoken)"] = input.getAttribute("aria-valuetext");
    });
    return {texts: texts, values: Object.fromEntries(Array.from(
        root.querySelectorAll("input[type=range]"), i => [i.name, Number(i.value)]))};
}"""


def text_problems(explorer, name: str) -> list[str]:
    """The status sentence and every slider text the page shows are what kernelnotes
    computes from the page's data for the slider values the page shows."""
    shown = explorer.evaluate(SHOWN_TEXTS)
    data = json.loads(explorer.locator(".kn-data").text_content())
    kind = Explorer.registry[explorer.get_attribute("data-kind")]
    expected = kind.page_texts(data, shown["values"])
    expected.update({f"{key} (spoken)": text for key, text in expected.items()
                     if key != "status"})
    return [f"{name} at {shown['values']}: the page shows {key} {shown['texts'][key]!r}, "
            f"kernelnotes computes {text!r}"
            for key, text in expected.items() if shown["texts"][key] != text]


def explorer_problems(page) -> list[str]:
    """Move every control of every interactive figure with the keyboard: the drawing must
    change, and every text shown must be the one kernelnotes computes."""
    problems = []
    explorers = page.locator(".kn-explorer")
    for i in range(explorers.count()):
        explorer = explorers.nth(i)
        explorer.scroll_into_view_if_needed()
        name = f"interactive figure {i + 1} ({explorer.get_attribute('data-kind')})"
        if explorer.locator(".kn-still, .kn-note").count() or explorer.locator(
                "canvas[hidden]").count():
            problems.append(f"{name}: the script did not replace the still image")
        problems += text_problems(explorer, name)
        sliders = explorer.locator("input[type=range]")
        if sliders.count() == 0:
            problems.append(f"{name} has no slider")
        for j in range(sliders.count()):
            slider = sliders.nth(j)
            before = canvas_pixels(page, explorer)
            status = explorer.locator(".kn-status").inner_text()
            start = slider.input_value()
            at_max = float(start) >= float(slider.get_attribute("max"))
            slider.focus()
            # Keyboard, as a reader would: jump to one end (or the other if already there),
            # then one step back.
            for key in ["Home", "ArrowRight"] if at_max else ["End", "ArrowLeft"]:
                page.keyboard.press(key)
                problems += text_problems(explorer, name)
            if slider.input_value() == start:
                problems.append(f"{name}: slider {slider.get_attribute('name')} did not move")
            elif canvas_pixels(page, explorer) == before:
                problems.append(f"{name}: moving {slider.get_attribute('name')} did not "
                                f"change the drawing")
            elif explorer.locator(".kn-status").inner_text() == status:
                problems.append(f"{name}: the status sentence did not follow the slider")
        if explorer.get_attribute("data-kind") == "nadaraya-watson":
            problems += drag_problems(page, explorer, name)
    return problems


def drag_problems(page, explorer, name) -> list[str]:
    """Dragging across the chart moves the query, and the page's estimate is the one
    kernelnotes computes for the same data, query and bandwidth."""
    canvas = explorer.locator("canvas")
    box = canvas.bounding_box()
    before = (canvas_pixels(page, explorer), explorer.get_attribute("data-state"))
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 0.3 * box["width"], y)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.6 * box["width"], y, steps=5)
    page.mouse.up()
    after = (canvas_pixels(page, explorer), explorer.get_attribute("data-state"))
    problems = text_problems(explorer, name)
    if after[1] == before[1] or after[0] == before[0]:
        problems.append(f"{name}: dragging on the chart did not move the query")
    data = json.loads(explorer.locator(".kn-data").text_content())
    state = json.loads(after[1])
    expected, _ = nadaraya_watson(torch.tensor([[state["query"]]], dtype=torch.float64),
                                  torch.tensor(data["x"], dtype=torch.float64)[:, None],
                                  torch.tensor(data["y"], dtype=torch.float64)[:, None],
                                  gaussian, bandwidth=state["bandwidth"])
    if abs(state["estimate"] - expected.item()) > 1e-9 * max(1.0, abs(expected.item())):
        problems.append(f"{name}: the page estimates {state['estimate']} at x = "
                        f"{state['query']}, kernelnotes {expected.item()}")
    return problems


def screenshot(page, path: str, kind: str) -> None:
    """A full-page screenshot for a person to look at, when KERNELNOTES_SCREENSHOTS is set
    (`make screenshots`): encoding pages tens of thousands of pixels tall takes longer than
    every check of the page together, and nothing is asserted on them."""
    if os.environ.get("KERNELNOTES_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        name = f"{path.removesuffix('.html').replace('/', '__')}--{kind}.png"
        page.screenshot(path=SHOTS / name, full_page=True)


def code_overflow_problems(page) -> list[str]:
    """Code cells (inputs and printed outputs) that scroll sideways."""
    wide = page.evaluate("""() => Array.from(document.querySelectorAll(
            ".cell_input pre, .cell_output pre"))
        .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
        .map(pre => {
            const cells = Array.from(document.querySelectorAll(".cell"));
            const cell = pre.closest(".cell");
            const longest = pre.textContent.split("\\n")
                .reduce((a, b) => (b.length > a.length ? b : a), "");
            return `cell ${cells.indexOf(cell) + 1} ` +
                `(${pre.closest(".cell_output") ? "output" : "code"}): ` +
                `${pre.scrollWidth - pre.clientWidth}px too wide, e.g. ${longest.trim()}`;
        })""")
    return [f"scrolls sideways at desktop width: {item[:160]}" for item in wide]


# Highlighted code and typeset formulas are thousands of elements (each token a <span>) in
# a handful of styles, made by Pygments and MathJax. So axe sees, of them, the first code
# block and the first formula whole, and one element of each combination of colour,
# background, size, weight and opacity found in the rest: all that a token's contrast
# depends on. That is most of its work on a long chapter (axe took 38 s on chapter 5, its
# colour-contrast rule 31 s of it); everything else on the page it checks in full.
BULK = [".highlight", "mjx-container"]
SAMPLE = "data-kn-axe-sample"
MARK_SAMPLES = """([bulk, attribute]) => {
    const backgroundOf = element => {
        for (let e = element; e; e = e.parentElement) {
            const colour = getComputedStyle(e).backgroundColor;
            if (colour !== "rgba(0, 0, 0, 0)" && colour !== "transparent") return colour;
        }
        return "none";
    };
    const hasText = e => Array.from(e.childNodes).some(
        n => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    const seen = new Set();
    document.querySelectorAll(`[${attribute}]`).forEach(e => e.removeAttribute(attribute));
    for (const selector of bulk) {
        const first = document.querySelector(selector);
        if (first) first.setAttribute(attribute, "");
    }
    for (const element of document.querySelectorAll(bulk.map(s => `${s}, ${s} *`).join(","))) {
        if (!hasText(element)) continue;
        const style = getComputedStyle(element);
        const key = [style.color, backgroundOf(element), style.fontSize, style.fontWeight,
                     style.opacity].join("|");
        if (!seen.has(key)) { seen.add(key); element.setAttribute(attribute, ""); }
    }
    return document.querySelectorAll(`[${attribute}]`).length;
}"""


def accessibility_problems(page, contrast_only: bool = False) -> list[str]:
    """Serious and critical violations found by the axe-core engine (bundled by the
    axe-playwright-python package, injected into the page: nothing is fetched), with all
    its rules or only colour contrast, in one run over the page with code and formulas
    sampled as ``BULK`` says (axe tests an element included inside an excluded one)."""
    from axe_playwright_python.sync_playwright import Axe

    page.evaluate(MARK_SAMPLES, [BULK, SAMPLE])
    context = {"include": [["html"], [f"[{SAMPLE}]"]],
               "exclude": [[selector] for selector in BULK]}
    # No stylesheet preloading: axe resolves a stylesheet's relative @import against the
    # page instead of the stylesheet and asks the server for a file that does not exist.
    options = {"resultTypes": ["violations"], "preload": False}
    if contrast_only:
        options["runOnly"] = {"type": "rule", "values": ["color-contrast"]}
    violations = Axe().run(page, context=context, options=options).response["violations"]
    return [f"axe {v['impact']}: {v['id']} ({v['help']}) at "
            f"{', '.join(str(n['target']) for n in v['nodes'][:3])}"
            for v in violations if v["impact"] in {"serious", "critical"}]


def switch_to_dark(page) -> None:
    """Turn an open page to the theme's dark mode as its switch does (the stored choice and
    the ``data-theme`` attribute its stylesheets key on), with transitions off so that no
    colour is half-way while axe measures."""
    page.add_style_tag(content="*, *::before, *::after { transition: none !important; }")
    page.evaluate("""() => {
        for (const key of ["mode", "theme"]) localStorage.setItem(key, "dark");
        document.documentElement.dataset.mode = "dark";
        document.documentElement.dataset.theme = "dark";
    }""")


@pytest.mark.parametrize("path", PAGES or ["<no site>"])
def test_page(visit, path):
    """Each page opened from disk, as the README allows (stricter than served: a file://
    page may fetch nothing; the search test checks both ways), at desktop width in light
    then dark mode (axe's text contrast is the only rule the theme's colours change), then
    narrowed to phone width."""
    assert PAGES, MISSING
    v = visit(DESKTOP, from_disk=True)
    page = v.open(path)
    problems = math_problems(page) + image_problems(page) + code_overflow_problems(page)
    problems += accessibility_problems(page)
    screenshot(page, path, "desktop")
    problems += explorer_problems(page)
    switch_to_dark(page)
    problems += [f"dark mode: {problem}"
                 for problem in accessibility_problems(page, contrast_only=True)]
    screenshot(page, path, "dark")

    page.set_viewport_size(PHONE)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 1:
        wide = page.evaluate("""() => Array.from(document.querySelectorAll("body *"))
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(-3).map(e => e.tagName + "." + e.className)""")
        problems.append(f"at {PHONE['width']} px the page scrolls sideways by {overflow}px "
                        f"({wide})")
    screenshot(page, path, "phone")

    problems += [f"request left the site: {url}" for url in v.outside]
    problems += [f"console error: {text}" for text in v.errors]
    problems += [f"missing file: {url}" for url in v.broken]
    assert not problems, f"{path}:\n  " + "\n  ".join(dict.fromkeys(problems))


def test_dark_mode_switched_in_place_is_the_dark_mode_a_reader_loads(visit):
    """`test_page` checks dark mode by switching an open page; a page loaded with dark mode
    already chosen must compute the same colours for the same elements."""
    assert CHAPTERS, MISSING
    colours = """() => Array.from(document.querySelectorAll(
            "body, main p, .highlight, .highlight span, .cell_output pre, a, table td, h1"))
        .slice(0, 400).map(e => { const s = getComputedStyle(e);
                                   return [s.color, s.backgroundColor].join("/"); })"""
    switched = visit(DESKTOP).open(CHAPTERS[0])
    switch_to_dark(switched)
    loaded = visit(DESKTOP)
    loaded.context.add_init_script("""localStorage.setItem("mode", "dark");
                                     localStorage.setItem("theme", "dark");""")
    page = loaded.open(CHAPTERS[0])
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert switched.evaluate(colours) == page.evaluate(colours)


# --- site-wide features -----------------------------------------------------------------


@pytest.mark.parametrize("path", CHAPTERS or ["<no chapters>"])
def test_every_chapter_offers_its_notebook_for_download(path):
    assert CHAPTERS, f"no notebook chapters in the built site ({MISSING})"
    html = (SITE / path).read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"]+\.ipynb)"[^>]*download-source', html)
    assert links, f"{path} has no download-notebook button"
    target = (SITE / path).parent / urlsplit(links[0]).path
    assert target.resolve().is_file(), f"{path}: download link {links[0]} leads nowhere"


@pytest.mark.parametrize("mode", ["served", "from disk"])
def test_offline_search_finds_the_chapters_with_snippets(visit, mode):
    assert PAGES, MISSING
    v = visit(DESKTOP, from_disk=mode == "from disk")
    page = v.open("search.html?q=Nadaraya")
    page.wait_for_selector("#search-results li p.context", timeout=20_000)
    hits = page.locator("#search-results li a").evaluate_all("as => as.map(a => a.href)")
    assert any("nadaraya" in h.lower() for h in hits), hits
    snippets = page.locator("#search-results li p.context").all_inner_texts()
    assert any("nadaraya" in s.lower() for s in snippets), snippets
    page.wait_for_load_state("networkidle")
    assert not v.outside and not v.errors and not v.broken, (v.outside, v.errors, v.broken)


def test_citations_resolve_to_the_references_page():
    assert PAGES, MISSING
    references = (SITE / "book" / "references.html").read_text(encoding="utf-8")
    anchors = set(re.findall(r'id="([^"]+)"', references))
    cited = 0
    for path in PAGES:
        html = (SITE / path).read_text(encoding="utf-8")
        for target in re.findall(r'href="(?:\.\./)*(?:book/)?references\.html#([^"]+)"', html):
            cited += 1
            assert target in anchors, f"{path} cites #{target}, absent from the references"
    assert cited, "no page cites a work on the references page"


def test_execution_statistics_list_what_this_build_executed():
    """`make book` executes every chapter and lists each; `make test` builds the site from the
    outputs strict nbval has just reproduced, so only the about page executes. Either way the
    table lists pages of this book, and the chapters all or none."""
    assert PAGES, MISSING
    about = (SITE / "book" / "about.html").read_text(encoding="utf-8")
    section = about[about.index('id="execution-statistics"'):]
    table = section[:section.index("</table>")]
    listed = set(re.findall(r'<span class="doc">(book/[\w-]+)</span>', table))
    assert "book/about" in listed, f"the table lists {sorted(listed)}"
    pages = {path.removesuffix(".html") for path in PAGES}
    assert listed <= pages, f"unknown pages in the table: {sorted(listed - pages)}"
    chapters = {chapter.removesuffix(".html") for chapter in CHAPTERS}
    assert listed & chapters in (set(), chapters), f"some chapters only: {sorted(listed)}"


# --- the explorers on their own page: what a live notebook shows ------------------------

def bare_page(directory: Path) -> tuple[list, str]:
    """Both explorers in a plain HTML page (no book, no theme), as JupyterLab shows
    trusted outputs, with a listener that counts the keys reaching the document."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand(25, generator=g, dtype=torch.float64)
    figures = [NadarayaWatsonExplorer(x, torch.cos(6 * x), bandwidth=0.05),
               KernelSectionsExplorer(lambda t: t * (1 - t), torch.linspace(0, 1, 7))]
    (directory / "index.html").write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>t</title></head>"
        "<body><script>window.keysOutside = 0; document.addEventListener('keydown', "
        "() => { window.keysOutside += 1; });</script>"
        f"{''.join(f._repr_html_() for f in figures)}</body></html>", encoding="utf-8")
    return figures, "index.html"


def test_explorer_outputs_work_on_a_bare_page(visit, tmp_path):
    """Each explorer draws, responds to keys and drags, says what kernelnotes computes,
    and keeps its keys to itself (JupyterLab would move the cell selection)."""
    (nw, sections), path = bare_page(tmp_path)
    v = visit(PHONE, directory=tmp_path)
    page = v.open(path)
    assert page.locator(".kn-explorer canvas:not([hidden])").count() == 2
    problems = explorer_problems(page)
    assert not problems and not v.errors and not v.outside, (problems, v.errors, v.outside)
    assert page.evaluate("window.keysOutside") == 0, "slider keys reached the document"
    # Wherever the keys and the drag left the query, the page agrees with Python.
    state = json.loads(page.locator(".kn-explorer").first.get_attribute("data-state"))
    expected = nw.predict(state["query"], state["bandwidth"]).item()
    assert state["estimate"] == pytest.approx(expected, abs=1e-12)
    state = json.loads(page.locator(".kn-explorer").nth(1).get_attribute("data-state"))
    assert state["width"] == sections.widths[-2].item()


def test_without_scripts_an_explorer_shows_its_first_state_and_says_to_run_it(browser,
                                                                                tmp_path):
    """What an untrusted notebook shows: scripts do not run."""
    figures, path = bare_page(tmp_path)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto((tmp_path / path).as_uri())
        for i, figure in enumerate(figures):
            root = page.locator(".kn-explorer").nth(i)
            still = root.locator("img.kn-still")
            assert still.is_visible() and still.evaluate("i => i.naturalWidth") > 0
            assert root.locator("canvas").is_hidden()
            assert "run this cell" in root.locator(".kn-note").inner_text()
            assert root.locator(".kn-status").inner_text() == figure.status()
            assert root.locator("input[type=range]").first.is_disabled()
    finally:
        context.close()


def test_the_page_formats_numbers_as_python_does(visit, tmp_path):
    """The page's `formatNumber` (explorer.js) against Python's format on awkward values."""
    _, path = bare_page(tmp_path)
    page = visit(DESKTOP, directory=tmp_path).open(path)
    g = torch.Generator().manual_seed(0)
    spread = 10 ** (12 * torch.rand(200, generator=g, dtype=torch.float64) - 6)
    signs = torch.randn(200, generator=g, dtype=torch.float64).sign()
    values = [0.0, 1.0, -1.0, 0.5, 2.5, 1000.0, 999.5, 0.0001, 0.00012345, 1.5e-7, 123456.0,
              -0.0042, 99.95, *(spread * signs).tolist()]
    shown = page.locator(".kn-explorer").first.evaluate(
        """(root, values) => {
            const js = root.querySelector("script:not([type])").textContent;
            const body = js.slice(js.indexOf("\\n") + 1, js.lastIndexOf("start();"));
            const formatNumber = new Function("root", "state", "draw",
                body + "; return formatNumber;")(root);
            return values.map(v => [formatNumber(v, ""), formatNumber(v, ".2f")]);
        }""", values)
    assert shown == [[f"{v + 0.0:.3g}", f"{v:.2f}"] for v in values]


def test_contrast_sampling_still_finds_one_faint_token_among_many(browser):
    """The contrast check samples code and formulas by style: a faint token among hundreds
    of fine ones, a faint formula and faint prose are each still reported."""
    tokens = "".join(f'<span class="n">token{i}</span> ' for i in range(300))
    page = browser.new_page()
    try:
        page.set_content(
            "<!doctype html><html lang='en'><head><title>t</title></head><body><main>"
            "<p>Prose.</p><p id='prose' style='color:#eee'>faint prose</p>"
            f"<div class='highlight'><pre>{tokens}<span id='token' style='color:#ddd'>faint"
            "</span></pre></div><p><mjx-container><span id='formula' style='color:#eee'>faint"
            "</span></mjx-container></p></main></body></html>")
        problems = accessibility_problems(page, contrast_only=True)
        marked = page.evaluate(f"document.querySelectorAll('[{SAMPLE}]').length")
    finally:
        page.close()
    assert len(problems) == 1 and "color-contrast" in problems[0], problems
    assert all(where in problems[0] for where in ["#prose", "#token", "#formula"]), problems
    # the first code block and formula, and one token of each style: plain, faint, formula
    assert marked == 5, f"{marked} elements sampled"
