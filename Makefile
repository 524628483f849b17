# kernelnotes: set-up, book, lab, test, bench. Every target installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The chapters are tested the way a reader runs them after `pip install kernelnotes[book]`: in a
# second environment holding the built wheel (not the editable source) and only its declared
# dependencies, registered in $(VENV) as the Jupyter kernel $(WHEEL_KERNEL).
WHEEL_ENV := _build/wheel-env
WHEEL_STAMP := $(WHEEL_ENV)/.installed
WHEEL_KERNEL := kernelnotes-wheel
# A single BLAS thread keeps notebook outputs identical run to run and machine to machine.
export OMP_NUM_THREADS ?= 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: setup book site lab test lint bench clean wheel-env pdf

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

# The site from the committed chapter outputs (only the about page executes): `make test` first
# proves with strict nbval that a fresh execution reproduces them, so each chapter runs once.
site: setup
	rm -rf _build/html _build/.doctrees _build/jupyter_execute
	@# a copy of _config.yml beside it (its relative paths resolve from its folder)
	sed 's/^  execute_notebooks: force$$/&\n  exclude_patterns: ["book\/[0-9][0-9]_*"]/' _config.yml > .config-site.yml
	grep -q 'exclude_patterns: \["book/\[0-9\]\[0-9\]_\*"\]' .config-site.yml
	$(BIN)/jupyter-book build . --config .config-site.yml --warningiserror --nitpick --keep-going; \
	  status=$$?; rm -f .config-site.yml; exit $$status

# The wheel environment: created once (again when the metadata or pins change); the wheel itself
# is rebuilt and reinstalled on every run, so it always holds the current source.
$(WHEEL_STAMP): $(STAMP) pyproject.toml requirements.txt
	rm -rf $(WHEEL_ENV)
	$(PYTHON) -m venv $(WHEEL_ENV)
	$(WHEEL_ENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(WHEEL_ENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	    -c requirements.txt ipykernel ".[book]"
	$(WHEEL_ENV)/bin/python -m ipykernel install --prefix $(CURDIR)/$(VENV) \
	    --name $(WHEEL_KERNEL) --display-name "Python 3 (kernelnotes wheel)" > /dev/null
	touch $@

wheel-env: $(WHEEL_STAMP)
	rm -rf _build/dist
	$(BIN)/python -m pip wheel --quiet --disable-pip-version-check --no-deps \
	    --no-build-isolation -w _build/dist .
	$(WHEEL_ENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
	    --force-reinstall _build/dist/kernelnotes-*.whl

# JupyterLab refuses to run as root unless told to (containers and CI machines run as root).
lab: setup
	$(BIN)/jupyter lab book/ $(if $(filter 0,$(shell id -u)),--allow-root)

lint: setup
	$(BIN)/ruff check .

# The browser checks of the site drive Debian's headless Chromium. As root (CI) it is installed
# here where missing; otherwise `make test` runs everything else and then stops with one
# instruction.
CHROMIUM := /usr/bin/chromium
have_chromium = $(shell test -x $(CHROMIUM) && echo yes)

# The whole book as one PDF, _build/pdf/book.pdf: a single-page build from the committed
# notebooks (only book/about.md executes), printed offline by the headless Chromium (the
# script says what to do if it is missing). When a site has been built (`make site` or
# `make book`), the PDF is also copied into it (_build/html/_static/book.pdf, linked from
# the introduction), so run this after it.
pdf: setup
	$(BIN)/python book/_ext/make_pdf.py

# 1. lint and notebook hygiene; 2. one pytest run: unit tests, and strict nbval executing each
# chapter once in the wheel environment; 3. the site from those verified outputs; 4. the
# browser checks of the built site and of the PDF.
test: setup wheel-env
	$(BIN)/ruff check .
	$(BIN)/python book/_ext/clean_notebooks.py --check book/*.ipynb
	KERNELNOTES_WHEEL_ENV=$(WHEEL_ENV) $(BIN)/python -m pytest -n 2 --dist loadfile -m "not browser" tests book \
	    --nbval --nbval-kernel-name $(WHEEL_KERNEL) --nbval-sanitize-with tests/nbval_sanitize.cfg
	$(MAKE) --no-print-directory site
	@if [ ! -x $(CHROMIUM) ] && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi
	@test -x $(CHROMIUM) || { echo; echo "Everything but the browser checks passed. They need" \
	  "Chromium at $(CHROMIUM): run 'sudo apt-get install chromium', then 'make test' again."; \
	  exit 1; }
	$(MAKE) --no-print-directory pdf
	$(BIN)/python -m pytest -n 2 -m browser tests

bench: setup
	$(BIN)/python benchmarks/linear_attention.py

clean:
	rm -rf _build .pytest_cache .ruff_cache .hypothesis
