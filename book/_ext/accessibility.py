"""Sphinx extension: markup fixes that assistive technology needs.

Docutils writes a bibliography as ``<div role="list">`` whose entries carry
``role="doc-biblioentry"``, a role that ARIA (DPUB-ARIA 1.1) has deprecated and that is not
a list item, so screen readers get a list without items (axe-core: "Certain ARIA roles
must contain particular children", critical). Each entry becomes a ``listitem``.
"""

from __future__ import annotations

_BIBLIOENTRY = ' role="doc-biblioentry"'


def biblioentries_as_list_items(app, pagename, templatename, context, doctree):
    if "body" in context:
        context["body"] = context["body"].replace(_BIBLIOENTRY, ' role="listitem"')


def setup(app):
    app.connect("html-page-context", biblioentries_as_list_items)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
