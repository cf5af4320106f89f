# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
# Each creates .venv from the project's own files (requirements.lock + pyproject.toml).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3.11
# this machine's pip configuration names local mirrors that may be absent: drop that noise only
QUIET_PIP := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out/demo
LANDING ?= $(OUT)/landing
QUARTERS ?= 2025Q4..2026Q3
BENCH_SCALE ?= city

.PHONY: venv test lint browser demo ui bench lock clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock $(QUIET_PIP)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e . $(QUIET_PIP)
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# the offline page tests open the Data Docs in headless Chromium (tests/browser.py): installed
# from Debian's packages where it is missing and this is root, as on CI
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      echo "make test: installing Chromium (apt-get install chromium)"; \
	      apt-get install -y -qq chromium >/dev/null 2>&1 || \
	        { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; \
	    else \
	      echo "make test: Chromium is needed for the offline page tests" \
	        "(Debian/Ubuntu: sudo apt-get install chromium)" >&2; exit 2; \
	    fi; }

# the Spark module last, on its own: the JVM's fixed cost per statement is CPU-bound, and beside
# another worker it took 85-100 s instead of 63-73 s
test: lint browser
	$(BIN)/pytest -q --ignore=tests/test_spark.py
	$(BIN)/pytest -q -n 0 tests/test_spark.py

demo: $(STAMP)
	$(BIN)/python -m pipelines.orchestration.demo --out $(OUT) --quarters $(QUARTERS)

ui: $(STAMP)
	$(BIN)/python -m pipelines.orchestration.instance $(abspath $(OUT))/.dagster >/dev/null
	# the demo data get the demo key unless a key is set
	SAFETYNET_LANDING=$(abspath $(LANDING)) SAFETYNET_OUT=$(abspath $(OUT)) \
	  SAFETYNET_PSEUDONYM_KEY="$${SAFETYNET_PSEUDONYM_KEY:-$$($(BIN)/python -c 'from pipelines.core.pseudonym import DEMO_KEY; print(DEMO_KEY)')}" \
	  DAGSTER_HOME=$(abspath $(OUT))/.dagster $(BIN)/dagster dev -w workspace.yaml

bench: $(STAMP)
	$(BIN)/python -m bench.gate
	$(BIN)/python -m bench.stages --scale $(BENCH_SCALE)
	$(BIN)/python -m bench.history --scale county --quarters 12

lock: $(STAMP)
	echo '# The whole dependency tree as tested (Python 3.11, linux x86_64). Regenerate with `make lock`.' > requirements.lock.new
	$(BIN)/pip freeze --exclude-editable | grep -v '^safetynet' >> requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
