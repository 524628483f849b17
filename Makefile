# kernelnotes: set-up, book, lab, test, bench. Every target installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A single BLAS thread keeps notebook outputs identical run to run and machine to machine.
export OMP_NUM_THREADS ?= 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: setup book lab test lint bench clean chromium pdf

setup: $(STAMP)

# Rebuilt only when the pins or the package metadata change, so a second run is instant.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# Executes every notebook fresh and builds the static site; warnings are errors.
book: setup
	rm -rf _build/html _build/.doctrees _build/jupyter_execute
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "Book built: $(CURDIR)/_build/html/index.html"

# JupyterLab refuses to run as root unless told to (containers and CI machines run as root).
lab: setup
	$(BIN)/jupyter lab book/ $(if $(filter 0,$(shell id -u)),--allow-root)

lint: setup
	$(BIN)/ruff check .

# The browser check of the site (tests/test_site.py) drives Debian's headless Chromium:
# installed here where it is missing (CI runs as root on a fresh machine).
CHROMIUM := /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "$(CHROMIUM) is missing: run 'sudo apt-get install chromium' (tests/test_site.py needs it)"; \
	    exit 1; \
	  fi; }

# The whole book as one PDF, _build/pdf/book.pdf: a single-page build from the committed
# notebooks (only book/about.md executes), printed offline by the headless Chromium. When
# `make book` has built the site, the PDF is also copied into it (_build/html/_static/
# book.pdf, linked from the introduction), so run this after `make book`.
pdf: setup chromium
	$(BIN)/python book/_ext/make_pdf.py

# Lint, build the book, then one pytest run: unit tests, strict nbval over every
# notebook, and the checks of the built site. Two workers, each taking whole files
# (a notebook's cells must run in order in one kernel).
test: setup chromium
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory book
	$(BIN)/python -m pytest -n 2 --dist loadfile tests book \
	    --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg

bench: setup
	$(BIN)/python benchmarks/linear_attention.py

clean:
	rm -rf _build .pytest_cache .ruff_cache .hypothesis
