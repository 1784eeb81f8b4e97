# tastebud: two commands do all set-up on a fresh machine with Python 3.11.
#   make demo   - create .venv, install, train the model zoo on an offline dataset, print + write a report
#   make test   - create .venv, install with test extras, run the test suite
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
export TASTEBUD_DATA ?= $(abspath ../shared/data)
# numba kernels parallelise themselves; a multi-threaded BLAS inside them is ~10x slower
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: demo test test-all bench-quick clean chromium

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "tastebud needs Python >= 3.11, found " + sys.version'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[torch,text,report]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,torch,text,serve,report,browser]'
	touch $@ $(VENV)/.installed-demo

# Browser tests (the experiment report; the service page) drive Debian's chromium with Playwright, never
# Playwright's own browser download (it needs the internet). Installed once, as root, when missing;
# without it those tests skip with a message.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null \
	      || echo "warning: could not install chromium; the browser tests will be skipped"; \
	  else echo "note: /usr/bin/chromium missing and not root; the browser tests will be skipped"; fi; \
	fi

demo: $(VENV)/.installed-demo
	$(BIN)/python -m tastebud.demo --report report

test: $(VENV)/.installed-test chromium
	$(BIN)/python -m tastebud.warmup
	$(BIN)/python -m pytest -m "not slow" -q --timeout=900

test-all: $(VENV)/.installed-test chromium
	$(BIN)/python -m tastebud.warmup
	$(BIN)/python -m pytest -q --timeout=1800

bench-quick: $(VENV)/.installed-test
	$(BIN)/pip install -q -e '.[bench]'
	for b in $(filter-out benchmarks/mf.py,$(wildcard benchmarks/*.py)); do $(BIN)/python $$b --quick --json benchmarks/out/$$(basename $$b .py).json || exit 1; done

clean:
	rm -rf $(VENV) report build dist src/*.egg-info .pytest_cache test-artifacts runs
