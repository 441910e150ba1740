# Two commands matter: `make book` (build the HTML book) and `make test` (run every test).
# The pipeline itself is tools/book.py; README.md ("How the book is built") explains it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SMOKE_HTML := _build/html-smoke
# `make browser` checks this build (default: the book-scale one from `make book`).
BOOK_HTML ?= _build/html
# `make book FORCE=1` re-executes notebooks even when nothing they depend on changed.
FORCE ?=
# Tests run in two worker processes, one test file (or notebook) per worker at a time;
# `make test XDIST=` runs them in one process.
XDIST ?= -n 2 --dist loadfile

.PHONY: book test unit browser venv clean

# The tests also need the optional Ray extra (the sweep runner's cluster tests); the book does not.
RAY_STAMP := $(VENV)/.installed-ray
$(RAY_STAMP): $(STAMP) requirements-ray.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-ray.txt
	$(PY) -c "import ray"
	touch $(RAY_STAMP)

venv: $(STAMP)

# Recreate the environment when requirements change; pip's output is kept quiet but errors show.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -v "is ignored: it is neither" || true
	$(PY) -c "import reinmax, torch, papermill, nbval, xdist, sympy, jupyter_book, mathjax"
	touch $(STAMP)

# Book scale: papermill runs every notebook into _build/stage-book/, then Jupyter Book builds
# _build/html from there with -W -n --keep-going (any error or warning fails); the built pages
# must show progress bars as final lines only (tests/test_book_html.py).
book: $(STAMP)
	$(PY) tools/book.py all --scale book $(if $(FORCE),--force)
	REINMAX_BOOK_HTML=_build/html $(PY) -m pytest -q -p no:cacheprovider tests/test_book_html.py

# 1. unit tests; 2. every notebook with -p smoke True; 3. nbval on the executed copies (cells
# tagged nbval-check-output are compared); 4. the book from the smoke copies (-W -n);
# Steps 1-3 run two at a time (pytest-xdist, a test file or notebook per worker; tools/book.py
# --jobs 2): on two cores that halves the wall time, and a file keeps its module fixtures.
# 5. checks of the pages just built: progress bars (tests/test_book_html.py) and headless
# Chromium. Any failing step stops the run (pytest's exit status 5, "no tests collected", is a
# failure too).
test: $(STAMP) $(RAY_STAMP)
	$(PY) -m pytest -q $(XDIST) tests --ignore=tests/test_book_browser.py --ignore=tests/test_book_html.py
	$(PY) tools/book.py execute --scale smoke --force --jobs 2
	$(PY) -m pytest -q -p no:cacheprovider $(XDIST) --nbval-lax --nbval-cell-timeout=300 _build/stage-smoke/notebooks
	$(PY) tools/book.py build --scale smoke
	REINMAX_BOOK_HTML=$(SMOKE_HTML) $(PY) -m pytest -q -rs tests/test_book_html.py tests/test_book_browser.py

unit: $(STAMP) $(RAY_STAMP)
	$(PY) -m pytest -q $(XDIST) tests --ignore=tests/test_book_browser.py --ignore=tests/test_book_html.py

browser: $(STAMP)
	REINMAX_BOOK_HTML=$(BOOK_HTML) $(PY) -m pytest -q -rs tests/test_book_html.py tests/test_book_browser.py

clean:
	rm -rf _build _executed .jupyter_cache
