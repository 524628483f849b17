"""Static checks of the committed chapters: outputs present, no errors, captioned figures.

Strict nbval (run by `make test`) re-executes each notebook and compares its text; these
checks cover what nbval cannot see: PNG figures and their captions and alt text.
"""

import json
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))


def code_cells(path):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def has_png(cell):
    return any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_with_outputs_and_no_errors(path):
    cells = code_cells(path)
    assert any(c.get("outputs") for c in cells), f"{path.name} has no committed outputs"
    errors = [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, f"{path.name} holds an error output: {errors[0].get('ename')}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_has_a_caption_and_alt_text(path):
    for index, cell in enumerate(code_cells(path)):
        meta = cell.get("metadata", {}).get("mystnb", {})
        where = f"{path.name}, code cell {index}"
        if has_png(cell):
            assert meta.get("figure", {}).get("caption"), f"{where}: figure without a caption"
            assert meta.get("image", {}).get("alt"), f"{where}: figure without alt text"
        if "figure" in meta:
            assert has_png(cell), f"{where}: captioned cell has no PNG output (inline backend?)"
            assert not any("image/svg+xml" in o.get("data", {}) for o in cell["outputs"])
