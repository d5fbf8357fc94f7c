# The only set-up a user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest postgres-server bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/supportflow demo

lint: $(STAMP)
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench

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

test: lint typecheck pytest

bench: $(STAMP) postgres-server
	$(BIN)/python bench/rebuild.py
	$(BIN)/python bench/timers.py
	$(BIN)/python bench/commands.py
	$(BIN)/python bench/audit.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis dist build
