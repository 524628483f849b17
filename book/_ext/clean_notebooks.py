"""Keep committed notebooks free of per-run noise, so a re-run that changes nothing changes no file.

``python book/_ext/clean_notebooks.py book/*.ipynb`` removes what an execution leaves behind that is
not a result: the per-cell ``metadata.execution`` timestamps nbconvert records. Outputs stay.
``--check`` changes nothing and exits 1, naming the notebooks, if any still carries timestamps
(``make test`` runs it that way).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def timestamped_cells(notebook: dict) -> list[int]:
    """Indices of the cells that carry execution timestamps."""
    return [i for i, cell in enumerate(notebook["cells"])
            if "execution" in cell.get("metadata", {})]


def clean(path: Path) -> bool:
    """Strip the timestamps of one notebook in place; True if the file changed."""
    notebook = json.loads(path.read_text())
    cells = timestamped_cells(notebook)
    for i in cells:
        del notebook["cells"][i]["metadata"]["execution"]
    if cells:
        # nbformat's own layout: one-space indent, a final newline, non-ASCII kept as is
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    return bool(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true",
                        help="only report notebooks with timestamps; exit 1 if there are any")
    args = parser.parse_args(argv)
    if args.check:
        dirty = [p for p in args.notebooks if timestamped_cells(json.loads(p.read_text()))]
        for path in dirty:
            print(f"{path}: execution timestamps committed; run "
                  f"'python book/_ext/clean_notebooks.py {path}'")
        return 1 if dirty else 0
    for path in args.notebooks:
        if clean(path):
            print(f"cleaned {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
