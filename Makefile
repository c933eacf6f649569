# Task runner. `make serve` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOME_DIR ?=

.PHONY: serve test lint typecheck format console bench setup browser postgres

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/.installed

# Debian's Chromium for the browser tests (never a downloaded browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

# Debian's PostgreSQL server binaries for tests/appliance/test_postgres.py (the test starts its own server).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q postgresql; }

serve: $(BIN)/.installed
	$(BIN)/appliance init $(if $(HOME_DIR),--home "$(HOME_DIR)")
	$(BIN)/appliance serve $(if $(HOME_DIR),--home "$(HOME_DIR)")

console: $(BIN)/.installed
	$(BIN)/appliance console $(if $(HOME_DIR),--home "$(HOME_DIR)")

test: $(BIN)/.installed browser postgres
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(BIN)/.installed
	$(BIN)/python bench/run_all.py
