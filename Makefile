# `make demo` and `make test` each set up what they need (a virtualenv in .venv) on first use,
# with the exact releases, checked by hash, that requirements-test.txt locks (README, "Dependencies").
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/pip install -q --disable-pip-version-check
# pip-tools writes the lock files; it lives in a virtualenv of its own, not among the project's.
TOOLS := $(VENV)/pip-tools
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(TOOLS)/bin/pip-compile --quiet \
	--generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links

.PHONY: demo test lint browser bench lock upgrade native clean-native

$(STAMP): pyproject.toml requirements-test.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "leadrouter needs Python 3.11 or newer (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) --require-hashes -r requirements-test.txt
	$(PIP) --no-deps -e .
	@touch $(STAMP)

# The routing core's hot modules compiled with mypyc into routing/compiled (ops/native.py), again
# whenever a file of routing/ changes. Without a C compiler it says so, and the core runs as plain
# Python, about 1.5 times slower per decision; `make native` insists.
NATIVE := routing/compiled/manifest.json
$(NATIVE): $(STAMP) ops/native.py $(shell find routing -name '*.py' -not -path 'routing/compiled/*')
	$(BIN)/python ops/native.py build --optional

native: $(STAMP)
	$(BIN)/python ops/native.py build

clean-native:
	$(BIN)/python ops/native.py clean

demo: $(NATIVE)
	$(BIN)/leadrouter demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The whole suite on the compiled core, as it ships; then the routing tests on the plain sources,
# which run wherever there is no compiler.
test: lint browser $(NATIVE)
	$(BIN)/pytest
	LEADROUTER_PLAIN_PYTHON=1 $(BIN)/pytest tests/routing

# The dashboard's tests drive a real headless browser: Debian's Chromium, installed here where it
# is missing and apt can install it (as root, as on CI). Elsewhere those tests skip, saying why.
browser:
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium fonts-liberation; }

bench: $(NATIVE)
	$(BIN)/python -m bench.bench_routing
	$(BIN)/python -m bench.bench_intake
	$(BIN)/python -m bench.bench_slack
	$(BIN)/python -m bench.bench_replicas
	$(BIN)/python -m bench.bench_sweep
	$(BIN)/python -m bench.bench_crm

$(TOOLS)/bin/pip-compile:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
		|| { echo "the lock is made for Python 3.11, as CI runs (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --disable-pip-version-check pip-tools==7.7.0

# The runtime lock first; the native lock adds what compiles the routing core, and the test lock
# the test tools, neither moving a pin of the one before.
# Pins already in the files are kept: `make upgrade PACKAGE=name` moves one.
lock: $(TOOLS)/bin/pip-compile
	$(PIP_COMPILE) $(UPGRADE) -o requirements.txt pyproject.toml
	$(PIP_COMPILE) $(UPGRADE) --extra native -c requirements.txt -o requirements-native.txt pyproject.toml
	$(PIP_COMPILE) $(UPGRADE) --extra test -c requirements-native.txt -o requirements-test.txt pyproject.toml

upgrade:
	@test -n "$(PACKAGE)" || { echo "usage: make upgrade PACKAGE=name"; exit 1; }
	$(MAKE) lock UPGRADE="--upgrade-package $(PACKAGE)"
