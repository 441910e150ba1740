# Two commands matter: `make book` (build the HTML book) and `make test` (run every test).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: book test unit venv clean

venv: $(STAMP)

# Recreate the environment when requirements change; pip's output is kept quiet but errors show.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -v "is ignored: it is neither" || true
	$(PY) -c "import reinmax, torch, papermill, nbval, sympy"
	touch $(STAMP)

unit: $(STAMP)
	$(PY) -m pytest -q tests

test: unit

book: $(STAMP)
	@echo "book pipeline: see tools/ (in progress)"

clean:
	rm -rf _build _executed
