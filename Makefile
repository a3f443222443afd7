# Two commands on a fresh machine (see README):  `make book`  and  `make test`.
BOOK_ARGS ?=
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= laptop
FMNIST := /usr/share/datasets/fashion-mnist

.PHONY: setup data test test-all run bench book clean

MATHJAX := .cache/mathjax/node_modules/mathjax/es5/tex-mml-chtml.js

setup: $(VENV)/.installed data $(MATHJAX)

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[book,test]'
	touch $@

# MathJax 3 for the book's formulas, served from the built book itself (no network needed to read it); without
# npm the book falls back to the CDN.
$(MATHJAX):
	@if command -v npm >/dev/null 2>&1; then \
		npm install --no-save --no-audit --no-fund --silent --prefix .cache/mathjax mathjax@3.2.2 \
		|| echo "note: npm could not install MathJax; the book will load it from the CDN"; \
	else echo "note: no npm; the book will load MathJax from the CDN"; fi

# Fashion-MNIST from Debian's package when apt is usable; otherwise adcore downloads it when online.
data:
	@if [ ! -d $(FMNIST) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get install -y -qq dataset-fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)) \
		>/dev/null 2>&1 || echo "note: could not install dataset-fashion-mnist with apt; adcore will try to download it"; \
	fi

# -n 1: the tests run in one pytest-xdist worker process; a native crash (segfault, heap corruption) fails the
# test that caused it, a new worker takes over, and the run goes on to report every other result.
PYTEST_ISOLATED := -p xdist -n 1 --max-worker-restart 20

test: setup
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ISOLATED)

test-all: setup
	$(PY) -m pytest -q $(PYTEST_ISOLATED)

# The acceptance single run: Fashion-MNIST class 0, HSC + natural-image OE, 10 epochs.
run: setup
	$(PY) -m adcore run --dataset fmnist --normal-class 0 --objective hsc --oe natural --oe-size 4096 --epochs 10

# Main job: execute every notebook with PROFILE (papermill, into _build/executed/) and render _build/html.
# Extra arguments: make book PROFILE=paper BOOK_ARGS="--only cifar10_table -p seeds 3"
book: setup
	$(PY) -m adcore.book --profile $(PROFILE) $(BOOK_ARGS)

bench: setup
	$(PY) bench/throughput.py
	$(PY) bench/multi_model.py
	$(PY) bench/fmnist_auc.py

clean:
	rm -rf _build build
