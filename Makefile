# The only set-up a user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest postgres-server bench clean docs package-check

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/supportflow demo

lint: $(STAMP)
	$(BIN)/ruff check src tests examples bench scripts
	$(BIN)/ruff format --check src tests examples bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy --strict

pytest: $(STAMP) postgres-server
	$(BIN)/python -m pytest

# The tests start their own throwaway PostgreSQL cluster (tests/_pg.py); this only makes sure
# Debian's server package is installed (as root; otherwise the tests say what is missing).
postgres-server:
	@if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; \
		else echo "PostgreSQL server binaries missing: install Debian's postgresql package"; fi; \
	fi

test: lint typecheck docs package-check pytest

# The documentation site (mkdocs.yml): --strict fails on a broken link or a missing reference.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Build the sdist and wheel, install the wheel into a clean virtualenv, run the demo and the
# README example from it.
package-check: $(STAMP)
	bash scripts/check_package.sh $(BIN)/python

# Every benchmark (bench/all.py: rebuild, commands, timer sweeps, audit), one report; about
# 4-5 minutes on 2 cores. docs/performance.md shows the figures and how to read them.
bench: $(STAMP) postgres-server
	$(BIN)/python bench/all.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis dist build site
