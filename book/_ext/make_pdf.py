"""Print the whole book to one PDF, offline: ``_build/pdf/book.pdf``.

Two steps, neither of which runs a chapter again:

1. A single-page HTML build of the book (Sphinx's ``singlehtml`` builder through Jupyter
   Book, with the project's ``_config.yml`` and ``_toc.yml``) into ``_build/pdf/html``.
   The chapters are shown with the outputs committed in their notebooks: every ``.ipynb``
   is excluded from execution. Only the text notebook ``book/about.md`` still runs (a few
   seconds: its software table has no stored output).
2. Debian's headless Chromium, driven by Playwright as in ``tests/test_site.py``, opens
   that page from a server on 127.0.0.1 (any request leaving it is blocked and fails the
   build), waits until MathJax has typeset every formula and every interactive figure has
   drawn its canvas, freezes each canvas into a picture of its initial state, applies
   the print stylesheet below and prints A4 with page numbers and a bookmark outline.

``make pdf`` also copies it into a built website, to ``_build/html/_static/book.pdf``, where
the introduction's download link points.

Run as ``python book/_ext/make_pdf.py`` (``make pdf`` does). It is a script, not a Sphinx
extension: it lives beside them because it drives the same build.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "_build" / "pdf"
PDF = OUT / "book.pdf"
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-default-apps",
               "--disable-extensions", "--mute-audio"]
# Seconds the browser may take for the page, its typesetting and its figures.
PAGE_TIMEOUT_S = 120

# The theme's screen furniture (header, sidebars, buttons, page navigation) is hidden; the
# article takes the full page width; every chapter starts on a new page (singlehtml puts
# an empty <span id="document-NAME"> before each document); code wraps instead of being
# cut at the margin; figures and references are not split across pages.
PRINT_CSS = """
@page { size: A4; }
.bd-header, .bd-header-announcement, .bd-sidebar-primary, .bd-sidebar-secondary,
.bd-header-article, .header-article-main, .prev-next-area, .bd-footer,
.bd-footer-article, .bd-footer-content, .footer-article, #pst-back-to-top, .skip-link,
.headerlink, .copybtn, .search-button, .theme-switch-button, .sidebar-toggle,
.primary-toggle, .secondary-toggle, .bd-search, .toggle-button, .kn-pdf-link {
  display: none !important;
}
html, body { background: #fff !important; }
.bd-container, .bd-container__inner, .bd-page-width, .bd-main, .bd-content,
.bd-article-container, .bd-article {
  display: block !important;
  max-width: none !important;
  width: auto !important;
  margin: 0 !important;
  padding: 0 !important;
}
[id^="document-"] + section { break-before: page; }
h1, h2, h3, h4 { break-after: avoid; }
figure, img, .kn-explorer, .cell_output, table, .citation { break-inside: avoid; }
pre { white-space: pre-wrap !important; overflow-wrap: anywhere; overflow: visible !important; }
a { color: inherit; }
"""

FOOTER = ('<div style="width:100%;font-size:8px;color:#555;text-align:center;'
          'font-family:sans-serif"><span class="pageNumber"></span> / '
          '<span class="totalPages"></span></div>')

# In the page: load every image now (the theme marks them lazy), then wait until MathJax
# has typeset and its fonts are in.
LOAD_IMAGES_AND_MATH = """async () => {
    const images = Array.from(document.images);
    images.forEach(img => { img.loading = "eager"; });
    await Promise.all(images.map(img => img.complete ? null : new Promise(done => {
        img.addEventListener("load", done);
        img.addEventListener("error", done);
    })));
    if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) {
        return {formulas: document.querySelectorAll(".math").length, typeset: -1};
    }
    await MathJax.startup.promise;
    await document.fonts.ready;
    return {formulas: document.querySelectorAll(".math").length,
            typeset: document.querySelectorAll(".math mjx-container").length,
            errors: document.querySelectorAll("mjx-merror").length,
            broken: images.filter(img => img.naturalWidth === 0).map(img => img.src)};
}"""

# True once every interactive figure has drawn something other than white on its canvas.
CANVASES_DRAWN = """() => Array.from(document.querySelectorAll(".kn-explorer canvas")).every(c => {
    if (!c.width || !c.height) { return false; }
    const pixels = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < pixels.length; i += 4) {
        if (pixels[i] < 250 || pixels[i + 1] < 250 || pixels[i + 2] < 250) { return true; }
    }
    return false;
})"""

# Each interactive figure's canvas becomes a still picture of its initial state, described
# by the figure's own text description, so printing cannot redraw it at another size.
FREEZE_CANVASES = """() => {
    const canvases = Array.from(document.querySelectorAll(".kn-explorer canvas"));
    canvases.forEach(c => {
        const img = document.createElement("img");
        img.src = c.toDataURL("image/png");
        const desc = c.closest(".kn-explorer").querySelector(".kn-desc");
        img.alt = desc ? desc.textContent.trim() : "interactive figure, initial state";
        img.style.cssText = "display:block;width:100%;height:auto";
        c.replaceWith(img);
    });
    return canvases.length;
}"""


class BuildError(RuntimeError):
    """The PDF could not be made as specified (the message says why)."""


def build_single_page(toc: Path, html_dir: Path) -> Path:
    """Build the book as one HTML page in ``html_dir`` from the committed notebooks.

    Returns the path of the page, ``html_dir/index.html``. Raises :class:`BuildError` if
    Sphinx fails.
    """
    from jupyter_book.sphinx import build_sphinx

    shutil.rmtree(html_dir, ignore_errors=True)
    shutil.rmtree(html_dir.parent / ".doctrees", ignore_errors=True)
    result = build_sphinx(
        ROOT, html_dir, noconfig=True, path_config=ROOT / "_config.yml",
        confoverrides={
            "external_toc_path": toc.as_posix(),
            "latex_individualpages": False,
            # The notebooks are shown as committed, with their outputs; only text
            # notebooks (about.md) execute.
            "nb_execution_excludepatterns": ["*.ipynb"],
        },
        builder="singlehtml", freshenv=True, quiet=True,
    )
    if result != 0:
        raise BuildError(f"the single-page HTML build failed: {result}")
    # The whole book is written into the page of the table of contents' root document,
    # but with addresses relative to the top folder: it goes there, replacing the
    # redirect that Jupyter Book writes as index.html.
    page = html_dir / f"{yaml.safe_load(toc.read_text(encoding='utf-8'))['root']}.html"
    if not page.is_file():
        raise BuildError(f"the single-page build wrote no {page}")
    return page.replace(html_dir / "index.html")


@contextmanager
def local_server(directory: Path):
    """Serve ``directory`` on 127.0.0.1 from a thread; yields the base address."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def print_page(html_dir: Path, page: Path, pdf: Path) -> None:
    """Print ``page`` (inside ``html_dir``) to ``pdf`` with headless Chromium.

    Raises :class:`BuildError` if the page asks for anything outside the local server,
    a formula is left untypeset, an image does not load or a figure never draws.
    """
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise BuildError(f"{CHROMIUM} is missing: run `make chromium` (as root) or "
                         f"`sudo apt-get install chromium`")
    with local_server(html_dir) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            # Twice the pixels: the frozen interactive figures stay sharp on paper.
            context = browser.new_context(viewport={"width": 1100, "height": 1400},
                                          device_scale_factor=2, service_workers="block")
            outside = []

            def route(request_route):
                url = request_route.request.url
                if url.startswith((base, "data:", "blob:", "about:")):
                    request_route.continue_()
                else:
                    outside.append(url)
                    request_route.abort()

            context.route("**/*", route)
            tab = context.new_page()
            tab.set_default_timeout(PAGE_TIMEOUT_S * 1000)
            tab.goto(base + page.relative_to(html_dir).as_posix(), wait_until="load")
            state = tab.evaluate(LOAD_IMAGES_AND_MATH)
            if state["typeset"] != state["formulas"] or state.get("errors"):
                raise BuildError(f"MathJax typeset {state['typeset']} of {state['formulas']} "
                                 f"formulas ({state.get('errors')} TeX errors)")
            if state["broken"]:
                raise BuildError(f"images that did not load: {state['broken']}")
            tab.wait_for_function(CANVASES_DRAWN)
            tab.evaluate(FREEZE_CANVASES)
            tab.add_style_tag(content=PRINT_CSS)
            tab.emulate_media(media="print")
            if outside:
                raise BuildError(f"the page asked for files outside the book: {outside}")
            tab.pdf(path=str(pdf), format="A4", print_background=True,
                    margin={"top": "18mm", "bottom": "20mm", "left": "16mm", "right": "16mm"},
                    display_header_footer=True, header_template="<span></span>",
                    footer_template=FOOTER, outline=True, tagged=True)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toc", type=Path, default=ROOT / "_toc.yml",
                        help="table of contents (default: the repository's _toc.yml)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        page = build_single_page(args.toc.resolve(), OUT / "html")
        built = time.perf_counter()
        print_page(OUT / "html", page, PDF)
    except BuildError as error:
        print(f"make_pdf: {error}", file=sys.stderr)
        return 1
    done = time.perf_counter()
    print(f"PDF written: {PDF} ({PDF.stat().st_size / 1e6:.1f} MB; HTML build "
          f"{built - start:.0f} s, printing {done - built:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
