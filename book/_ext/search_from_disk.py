"""Sphinx extension: the search page shows snippets when the site is opened from disk.

Sphinx's search fetches every result page to cut a snippet around the words found. A page
opened as ``file://`` may not fetch other files (browsers block it, and log an error per
result). So this extension writes the main content of every page into
``_static/search_pages.js`` (scripts, styles and images left out) and loads it, with
``search_from_disk.js``, on the search page only; there, under ``file://``, the search's
requests for pages are answered from that file. Served over HTTP nothing changes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

# Nothing a snippet can use: scripts (the explorers' code and data), styles, images.
_NOT_TEXT = re.compile(r"<script\b.*?</script>|<style\b.*?</style>|<img\b[^>]*>",
                       re.DOTALL | re.IGNORECASE)


def collect_page(app, pagename, templatename, context, doctree):
    if pagename == "search":
        app.add_js_file("search_pages.js")
        app.add_js_file("search_from_disk.js")
    elif doctree is not None and "body" in context:
        body = _NOT_TEXT.sub("", context["body"])
        app.env.kn_search_pages = getattr(app.env, "kn_search_pages", {})
        app.env.kn_search_pages[pagename] = f'<div role="main">{body}</div>'


def write_pages(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    pages = getattr(app.env, "kn_search_pages", {})
    text = json.dumps(pages, ensure_ascii=False, sort_keys=True).replace("</", "<\\/")
    static = Path(app.outdir) / "_static"
    static.mkdir(exist_ok=True)
    (static / "search_pages.js").write_text(
        f"window.kernelnotesSearchPages = {text};\n", encoding="utf-8")


def setup(app):
    app.connect("html-page-context", collect_page)
    app.connect("build-finished", write_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": False}
