# Set-up from nothing: `make demo` and `make test` create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PIP_FLAGS := --disable-pip-version-check --quiet

.PHONY: demo test check lint typecheck format bench clean chromium screenshot docs notebook

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIP_FLAGS) --upgrade pip

# The package, with torch pinned by constraints.txt.
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install $(PIP_FLAGS) -c constraints.txt -e .
	@touch $@

# The test tools, on top.
$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install $(PIP_FLAGS) -c constraints.txt -e '.[test]'
	@touch $@

demo: $(VENV)/.installed
	$(BIN)/rnngrad report --out rnngrad-report --force

# The README's screenshot of the page (needs Chromium and the test tools).
screenshot: $(VENV)/.installed-test chromium
	$(BIN)/python benchmarks/screenshot.py docs

# The example notebook with its outputs saved (PNG figures beside the interactive ones).
notebook: $(VENV)/.installed-test
	$(BIN)/python benchmarks/notebook.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

check: lint typecheck

# The report's browser test drives Debian's Chromium; install it when missing (root only).
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium is not installed: the browser test will be skipped"
	@fc-list :lang=ko 2>/dev/null | grep -q . || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-nanum >/dev/null; } \
	  || echo "no font with Hangul: the Korean page's figures and screenshots will show boxes"

# The documentation site (mkdocs-material, mkdocstrings) into site/; strict: a broken
# reference or link fails the build.
docs: $(VENV)/.installed-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: check docs chromium
	$(BIN)/python -m pytest

format: $(VENV)/.installed-test
	$(BIN)/ruff format src tests benchmarks examples
	$(BIN)/ruff check --fix src tests benchmarks examples

# The speed benchmarks (a few minutes); benchmarks/remedies.py is separate (much longer).
bench: $(VENV)/.installed
	$(BIN)/python benchmarks/scalar_phase.py
	$(BIN)/python benchmarks/profile_overhead.py
	$(BIN)/python benchmarks/lyapunov_speed.py
	$(BIN)/python benchmarks/sweep_scaling.py

clean:
	rm -rf $(VENV) build dist site src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
