# Task runner. `make serve` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOME_DIR ?=
PORT ?=

.PHONY: serve test lint typecheck format console bench setup browser postgres desktop xdisplay

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

# Qt's X11 libraries for the desktop console (PySide6 6.5+ aborts without them): the appliance says what its
# platform plugin lacks (by loading it as the loader does) and the apt command that brings it.
desktop: $(BIN)/.installed
	@$(BIN)/python -m appliance.cli.desktop_libs >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q $$($(BIN)/python -m appliance.cli.desktop_libs --apt-packages) \
	  && $(BIN)/python -m appliance.cli.desktop_libs; }

# A real X server and xwininfo for the console test that runs on a display, not offscreen.
xdisplay:
	@{ command -v Xvfb && command -v xwininfo; } >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q xvfb x11-utils; }

serve: $(BIN)/.installed
	$(BIN)/appliance init $(if $(HOME_DIR),--home "$(HOME_DIR)")
	$(BIN)/appliance serve $(if $(HOME_DIR),--home "$(HOME_DIR)") $(if $(PORT),--port "$(PORT)")

console: $(BIN)/.installed desktop
	$(BIN)/appliance console $(if $(HOME_DIR),--home "$(HOME_DIR)")

test: $(BIN)/.installed browser postgres desktop xdisplay
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
