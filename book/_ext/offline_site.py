"""Sphinx extension: keep the built book self-contained.

Jupyter Book always loads ``sphinx_thebe``, which adds a settings script naming a CDN
(``THEBE_JS_URL``) to every page, twice, so each page logs "Identifier 'THEBE_JS_URL' has
already been declared". The book does not use thebe (its figures run without a kernel),
so this extension drops thebe's scripts, stylesheet and inert page configuration.

After the build it scans the written HTML for anything that would make the browser fetch
a file from outside the site (a script, stylesheet, image, font or iframe with an
``http(s)://`` or protocol-relative address) and reports each one as a warning, which the
book build (``-W``) turns into a failure. Ordinary links to other websites are fine: a
reader has to click them.
"""

from __future__ import annotations

import re
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

# Attributes through which a page loads a resource by itself (not <a href>).
_LOADING = re.compile(
    r"<(script|img|iframe|audio|video|source|embed)\b[^>]*?\bsrc\s*=\s*[\"']"
    r"((?:https?:)?//[^\"']+)"
    r"|<link\b(?=[^>]*\brel\s*=\s*[\"'](?:stylesheet|preload|modulepreload|icon|"
    r"shortcut icon|prefetch|preconnect|dns-prefetch)[\"'])[^>]*?\bhref\s*=\s*[\"']"
    r"((?:https?:)?//[^\"']+)",
    re.IGNORECASE,
)

_THEBE_CONFIG = re.compile(r'\s*<script type="text/x-thebe-config">.*?</script>', re.DOTALL)


def _is_thebe(asset) -> bool:
    filename = getattr(asset, "filename", None) or ""
    body = (getattr(asset, "attributes", None) or {}).get("body", "")
    return "thebe" in filename or "THEBE_JS_URL" in body


def drop_thebe(app, pagename, templatename, context, doctree):
    for key in ("script_files", "css_files"):
        if key in context:
            # In place: files that other extensions add to this page later land in this list.
            context[key][:] = [asset for asset in context[key] if not _is_thebe(asset)]
    if "body" in context:
        context["body"] = _THEBE_CONFIG.sub("", context["body"])


def external_loads(html: str) -> list[str]:
    """The outside addresses a page would fetch on load."""
    return [m.group(2) or m.group(3) for m in _LOADING.finditer(html)]


def check_self_contained(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    for page in sorted(Path(app.outdir).rglob("*.html")):
        for url in external_loads(page.read_text(encoding="utf-8", errors="replace")):
            logger.warning("%s loads %s from outside the site",
                           page.relative_to(app.outdir), url)


def setup(app):
    app.connect("html-page-context", drop_thebe)
    app.connect("build-finished", check_self_contained)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
