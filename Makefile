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
# What `make test` prints of the site, the PDF and their browser checks, run beside its pytest.
BUILD_LOG := _build/site-checks.log
# What the site and the PDF are made from; they are rebuilt when any of it changes.
BOOK_SOURCES := $(shell find book kernelnotes -type f ! -path '*/__pycache__/*' \
                  ! -path '*/.ipynb_checkpoints/*') _config.yml _toc.yml
SITE_STAMP := _build/html/.built
PDF := _build/pdf/book.pdf
# A single BLAS thread keeps notebook outputs identical run to run and machine to machine.
export OMP_NUM_THREADS ?= 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: setup book site lab test lint bench clean wheel-env pdf screenshots site-checks

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
# Rebuilt only when the book, the package, the configuration or the environment changed.
site: $(SITE_STAMP)

$(SITE_STAMP): $(STAMP) $(BOOK_SOURCES)
	rm -rf _build/html _build/.doctrees _build/jupyter_execute
	@# a copy of _config.yml beside it (its relative paths resolve from its folder)
	sed 's/^  execute_notebooks: force$$/&\n  exclude_patterns: ["book\/[0-9][0-9]_*"]/' _config.yml > .config-site.yml
	grep -q 'exclude_patterns: \["book/\[0-9\]\[0-9\]_\*"\]' .config-site.yml
	$(BIN)/jupyter-book build . --config .config-site.yml --warningiserror --nitpick --keep-going; \
	  status=$$?; rm -f .config-site.yml; exit $$status
	touch $@

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

# The whole book as one PDF, $(PDF): a single-page build from the committed notebooks (only
# book/about.md executes), printed offline by the headless Chromium (the script says what to
# do if it is missing); rebuilt when the site would be. Where a site has been built, the PDF
# is copied into it (_build/html/_static/book.pdf, linked from the introduction).
pdf: $(PDF)
	@if [ -d _build/html/_static ]; then cp $(PDF) _build/html/_static/book.pdf; fi

$(PDF): $(STAMP) $(BOOK_SOURCES) book/_ext/make_pdf.py
	$(BIN)/python book/_ext/make_pdf.py

# 1. lint and notebook hygiene; 2. one pytest run: strict nbval executing each chapter once in
# the wheel environment (the chapters first: they are the longest items, and the unit tests
# then fill in around them), and the unit tests; beside it, from the committed outputs that this
# run proves a fresh execution reproduces, the site and the PDF are built (when their sources
# changed) and checked in the browser (`site-checks`, its output gathered in $(BUILD_LOG) and
# printed after), so that both cores stay busy to the end.
test: setup wheel-env
	$(BIN)/ruff check .
	$(BIN)/python book/_ext/clean_notebooks.py --check book/*.ipynb
	@if [ ! -x $(CHROMIUM) ] && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi
	@mkdir -p _build; echo "The site, the PDF and their browser checks run beside the tests" \
	  "(output below when both are done)."
	@$(MAKE) --no-print-directory site-checks > $(BUILD_LOG) 2>&1 & site=$$!; \
	  KERNELNOTES_WHEEL_ENV=$(WHEEL_ENV) $(BIN)/python -m pytest -n 2 --dist loadfile \
	    -m "not browser" book tests --nbval --nbval-kernel-name $(WHEEL_KERNEL) \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg; tests=$$?; \
	  wait $$site; checked=$$?; \
	  echo; echo "---- the site, the PDF and the browser checks ($(BUILD_LOG)) ----"; \
	  cat $(BUILD_LOG); [ $$tests = 0 ] && [ $$checked = 0 ]

# The site from the committed outputs and the PDF (two single-threaded builds, side by side),
# then the browser checks of both. Without Chromium (and not root, so not installed by
# `make test`) it stops with one instruction.
site-checks:
	@test -x $(CHROMIUM) || { echo "The browser checks and the PDF need Chromium at" \
	  "$(CHROMIUM): run 'sudo apt-get install chromium', then 'make test' again."; exit 1; }
	$(MAKE) --no-print-directory -j 2 site $(PDF)
	$(MAKE) --no-print-directory pdf
	$(BIN)/python -m pytest -n 2 -m browser tests

# The site's page checks again, saving full-page screenshots (desktop, dark, phone) of every
# page in _build/screenshots/ for a person to look at.
screenshots: site
	KERNELNOTES_SCREENSHOTS=1 $(BIN)/python -m pytest -n 2 -m browser tests/test_site.py -k test_page

bench: setup
	$(BIN)/python benchmarks/linear_attention.py

clean:
	rm -rf _build .pytest_cache .ruff_cache .hypothesis
