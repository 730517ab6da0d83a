# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo demo-model test test-fast test-gpu bench browser-deps clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[notebooks,eval,dev]'
	touch $(STAMP)

# Debian's chromium for the real-browser widget test (Playwright's own download cannot run here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found: install it (apt-get install chromium) to run the browser test"; fi; }

demo: $(STAMP)
	$(PY) -m csa_lib.cli.demo

# Rebuild the shipped demo weights from scratch (data, rounds 0-8, export, the measured round 9, evaluation): about 8 h on a 2-core CPU.
demo-model: $(STAMP)
	bash scripts/train_demo_model.sh

test: $(STAMP) browser-deps
	$(PY) -m pytest -q tests
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  CSA_SMOKE=1 $(PY) -m pytest -q --nbval-lax --nbval-current-env --nbval-cell-timeout=300 -p no:cacheprovider notebooks; \
	else echo "no notebooks yet"; fi

test-fast: $(STAMP)
	$(PY) -m pytest -q -x tests -m "not slow and not browser"

# The CUDA tier alone (AMP, bf16, device paths); every test in it skips on a machine without CUDA.
test-gpu: $(STAMP)
	$(PY) -m pytest -q tests -m gpu

bench: $(STAMP)
	$(PY) benchmarks/bench_csa_layer.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_inpaint.py

clean:
	rm -rf $(VENV) outputs .pytest_cache
