"""The PDF of the whole book, ``_build/pdf/book.pdf`` (written by ``make pdf``).

Read with PDFium (``pypdfium2``): every document of ``_toc.yml`` is there, in order, each
opening on a new page with its title; the mathematics was typeset by MathJax (its fonts
carry the formulas, and no TeX source is left in the text); every figure of the committed
notebooks is embedded as an image, the interactive ones included, with its caption; every
exercise is printed with its solution; the references list every work of the bibliography.
The opening page of each document is rendered to PNG in ``_build/pdf/pages/`` for a
person to look at, and must not be blank.
If the website has been built, it offers the same PDF for download.
"""

from __future__ import annotations

import ctypes
import json
import re
from pathlib import Path

import pytest
import yaml

# Run with the browser checks, after `make site` and `make pdf` (the PDF is Chromium's).
pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
PDF = ROOT / "_build" / "pdf" / "book.pdf"
PAGES_DIR = PDF.parent / "pages"
SITE = ROOT / "_build" / "html"
MISSING = f"{PDF} is missing: run `make pdf` (after `make site` for the site's copy)"
FONT_IS_MATHJAX = re.compile(rb"/FontName /[A-Z]{6}\+MathJax_(\w+)")


# --- the book's sources: documents in order, titles, formulas, figures ------------------

def toc_documents() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    names = [toc["root"]] + [entry["file"] for entry in toc["chapters"]]
    paths = []
    for name in names:
        found = [p for p in (ROOT / f"{name}.ipynb", ROOT / f"{name}.md") if p.is_file()]
        assert found, f"_toc.yml names {name}, which is neither {name}.ipynb nor {name}.md"
        paths.append(found[0])
    return paths


def markdown_and_code(path: Path) -> tuple[str, list[dict]]:
    """The prose of a document and its code cells (none for a Markdown page)."""
    if path.suffix == ".md":
        # A text notebook's code cells are fenced too: the prose check drops fences.
        return path.read_text(encoding="utf-8"), []
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    prose = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return prose, [c for c in cells if c["cell_type"] == "code"]


def normalise(text: str) -> str:
    """Text as compared here: typographic quotes plain, line breaks (and breaks after a
    hyphen, which PDFium reports as U+FFFE) gone, runs of white space single."""
    text = text.translate(str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"',
                                         "\ufffe": "-"}))
    text = re.sub(r"-\s+", "-", text)
    return re.sub(r"\s+", " ", text).strip()


def title(path: Path) -> str:
    prose, _ = markdown_and_code(path)
    heading = re.search(r"^# (.+)$", prose, re.MULTILINE)
    assert heading, f"{path.name} has no level-1 title"
    return normalise(re.sub(r"[*_`]", "", heading.group(1)))


def prose_without_code(prose: str) -> str:
    prose = re.sub(r"^(```|~~~).*?^\1", "", prose, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", prose)


def formula_count(path: Path) -> int:
    """Display and inline formulas written in the document's prose."""
    prose = prose_without_code(markdown_and_code(path)[0])
    display = re.findall(r"\$\$.+?\$\$", prose, re.DOTALL)
    inline = re.findall(r"\$[^$\n]+\$", re.sub(r"\$\$.+?\$\$", "", prose, flags=re.DOTALL))
    return len(display) + len(inline)


def tex_commands_only_in_math() -> set[str]:
    """TeX commands the prose's formulas use that no code cell or output prints: if any
    shows in the PDF's text, a formula was left as TeX."""
    in_math, in_code = set(), set()
    for path in toc_documents():
        prose, code = markdown_and_code(path)
        prose = prose_without_code(prose)
        for formula in re.findall(r"\$\$.+?\$\$|\$[^$\n]+\$", prose, re.DOTALL):
            in_math.update(re.findall(r"\\[A-Za-z]+", formula))
        code_text = json.dumps(code)
        in_code.update(re.findall(r"\\\\[A-Za-z]+", code_text))
    return in_math - {c.replace("\\\\", "\\") for c in in_code}


def figures(path: Path) -> tuple[int, list[str]]:
    """How many figures a notebook shows (PNG outputs and interactive explorers), and the
    captions of the captioned ones."""
    count, captions = 0, []
    for cell in markdown_and_code(path)[1]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            count += "image/png" in data
            count += 'class="kn-explorer"' in "".join(data.get("text/html", ""))
        caption = cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("caption")
        if caption:
            captions.append(caption)
    return count, captions


# --- the PDF ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pdf():
    assert PDF.is_file(), MISSING
    import pypdfium2

    document = pypdfium2.PdfDocument(PDF)
    yield document
    document.close()


@pytest.fixture(scope="module")
def page_texts(pdf) -> list[str]:
    return [text for text, _ in read_pages(pdf)]


@pytest.fixture(scope="module")
def page_tops(pdf) -> list[str]:
    return [top for _, top in read_pages(pdf)]


def read_pages(pdf) -> list[tuple[str, str]]:
    """Each page's text without its page number, and the text of its top fifth (PDFium's
    reading order puts a column of reference labels before the heading above it; position
    does not)."""
    texts = []
    for number, page in enumerate(pdf, start=1):
        _, height = page.get_size()
        textpage = page.get_textpage()
        text = normalise(textpage.get_text_range())
        footer = f"{number} / {len(pdf)}"
        assert text.endswith(footer), f"page {number} does not end with its number {footer!r}"
        texts.append((text.removesuffix(footer).rstrip(),
                      normalise(textpage.get_text_bounded(bottom=0.8 * height, top=height))))
        textpage.close()
    return texts


@pytest.fixture(scope="module")
def openings(page_tops) -> dict[Path, int]:
    """The page (0-based) on which each document of the table of contents opens: the first
    page, after the previous document's, whose top starts with the document's title."""
    found, start = {}, 0
    for path in toc_documents():
        heading = title(path)
        pages = [i for i in range(start, len(page_tops)) if page_tops[i].startswith(heading)]
        assert pages, (f"no page from {start + 1} on opens with the title of {path.name}, "
                       f"{heading!r}: missing, out of order, or not on a new page")
        found[path] = start = pages[0]
    return found


def page_ranges(openings, page_count: int) -> dict[Path, range]:
    starts = [*openings.values(), page_count]
    return {path: range(a, b) for path, a, b in zip(openings, starts, starts[1:], strict=False)}


def nameless_font_runs(page) -> int:
    """Text runs on a page set in a font without a PostScript name: Chromium embeds the web
    fonts MathJax draws with as Type 3 fonts, which have none; the body text is DejaVu."""
    from pypdfium2 import raw

    runs = 0
    for obj in page.get_objects(filter=(raw.FPDF_PAGEOBJ_TEXT,)):
        font = raw.FPDFTextObj_GetFont(obj.raw)
        size = raw.FPDFFont_GetBaseFontName(font, None, 0)
        name = ctypes.create_string_buffer(size)
        raw.FPDFFont_GetBaseFontName(font, name, size)
        runs += not name.value
    return runs


def test_every_document_opens_on_its_own_page_in_toc_order(openings):
    assert list(openings) == toc_documents()
    assert openings[toc_documents()[0]] == 0, "the introduction is not the first page"


def test_opening_pages_render_and_are_not_blank(pdf, openings):
    PAGES_DIR.mkdir(parents=True, exist_ok=True)
    for old in PAGES_DIR.glob("*.png"):
        old.unlink()
    for path, index in openings.items():
        image = pdf[index].render(scale=1.5).to_pil().convert("L")
        image.save(PAGES_DIR / f"page{index + 1:03d}-{path.stem}.png")
        histogram = image.histogram()
        inked = sum(histogram[:200]) / (image.width * image.height)
        # A page of text covers a few per cent of its area with ink; a blank one none.
        assert inked > 0.005, f"page {index + 1} ({path.name}) is nearly blank: {inked:.2%} ink"


def test_mathematics_was_typeset_by_mathjax(pdf, page_texts, openings):
    fonts = set(FONT_IS_MATHJAX.findall(PDF.read_bytes()))
    assert {b"Main", b"Math"} <= fonts, f"MathJax's TeX fonts are not in the PDF: {fonts}"
    text = " ".join(page_texts)
    left = [c for c in sorted(tex_commands_only_in_math()) if c in text]
    left += [d for d in ("$$", "\\(", "\\[") if d in text]
    assert not left, f"TeX source left in the PDF's text (formulas not typeset): {left}"
    for path, pages in page_ranges(openings, len(pdf)).items():
        formulas = formula_count(path)
        glyph_runs = sum(nameless_font_runs(pdf[i]) for i in pages)
        # Every formula is drawn with at least one run of MathJax glyphs.
        assert glyph_runs >= formulas, (f"{path.name}: {formulas} formulas in the source, "
                                        f"only {glyph_runs} runs of MathJax glyphs")


def test_every_figure_is_embedded_with_its_caption(pdf, page_texts, openings):
    from pypdfium2 import raw

    text = " ".join(page_texts)
    for path, pages in page_ranges(openings, len(pdf)).items():
        count, captions = figures(path)
        images = sum(len(list(pdf[i].get_objects(filter=(raw.FPDF_PAGEOBJ_IMAGE,))))
                     for i in pages)
        assert images >= count, f"{path.name}: {count} figures, {images} images in its pages"
        for caption in captions:
            # The words before any markup or formula, as the PDF's text has them.
            words = normalise(re.split(r"[$*`\[]", caption)[0])[:60].strip()
            assert words in text, f"{path.name}: caption {words!r} is not in the PDF"
    numbers = {int(n) for n in re.findall(r"\bFig\. (\d+)\b", text)}
    total = sum(len(figures(path)[1]) for path in toc_documents())
    assert numbers == set(range(1, total + 1)), (f"figure numbers {sorted(numbers)}, "
                                                 f"{total} captions")


def test_every_exercise_is_printed_with_its_solution(page_texts):
    # On the site a solution is folded away; on paper it is printed after its exercise.
    sources = [markdown_and_code(path)[0] for path in toc_documents()]
    def directives(name: str) -> int:
        fence = r"^(?:`{3,}|:{3,})\{" + name + r"\}"
        return sum(len(re.findall(fence, text, re.MULTILINE)) for text in sources)

    exercises = directives("exercise")
    solutions = directives("solution") + directives("solution-start")
    text = " ".join(page_texts)
    printed = len(re.findall(r"\bExercise \d+\b", text))
    assert printed >= exercises, f"{exercises} exercises in the sources, {printed} printed"
    printed = len(re.findall(r"\bSolution to Exercise \d+\b", text))
    assert printed == solutions, f"{solutions} solutions in the sources, {printed} printed"


def test_the_references_list_every_work(page_texts, openings):
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    titles = re.findall(r"^\s*title\s*=\s*\{(.+)\},?\s*$", bib, re.MULTILINE)
    assert titles, "no titles found in book/references.bib"
    references = [p for p in openings if p.stem == "references"]
    assert references, "_toc.yml has no references page"
    start = openings[references[0]]
    end = min([i for i in openings.values() if i > start], default=len(page_texts))
    # The bibliography style changes the case of titles, so compare without it.
    text = " ".join(page_texts[start:end]).lower()
    missing = [t for t in titles if normalise(t.replace("{", "").replace("}", "")).lower()
               not in text]
    assert not missing, f"{len(missing)} of {len(titles)} works not listed: {missing}"


def test_the_website_offers_the_pdf():
    if not (SITE / "index.html").is_file():
        pytest.skip(f"no website at {SITE}: `make site` builds it")
    copy = SITE / "_static" / "book.pdf"
    assert copy.is_file(), f"{copy} is missing: run `make pdf` after `make site`"
    assert PDF.is_file() and copy.read_bytes() == PDF.read_bytes(), f"{copy} is stale"
    root = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))["root"]
    intro = (SITE / f"{root}.html").read_text(encoding="utf-8")
    link = "../" * root.count("/") + "_static/book.pdf"
    assert f'href="{link}"' in intro, f"the first page ({root}) has no link to {link}"
