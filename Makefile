# sif-bot: `make run` and `make test` set everything up on a machine with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint typecheck contracts pytest bench clean

# The set-up says what it does in one line a step and shows pip's errors and warnings,
# nothing else: no version nag, and not setuptools' note on editable installs ("be careful
# with folders in your working directory...", meant for package authors), which is
# filtered by its message so that every other warning still shows.
PIP := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip --quiet \
	--disable-pip-version-check --no-input

# The translation catalogs (bot/i18n/locales/*/LC_MESSAGES/sif.po) compiled for the bot.
COMPILE_CATALOGS := test ! -d bot/i18n || { echo "Compiling the translations (nl, fr, de)..." \
	&& $(BIN)/python -m bot.i18n.catalogs compile; }

$(BIN)/python:
	@echo "Creating $(VENV) with $(PYTHON)..."
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing sif-bot and its libraries into $(VENV) (a minute or two the first time)..."
	@$(PIP) install -e .
	@$(COMPILE_CATALOGS)
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing sif-bot with its development tools into $(VENV)..."
	@$(PIP) install -e '.[dev]'
	@$(COMPILE_CATALOGS)
	@touch $@ $(STAMP)

run: $(STAMP)
	@$(BIN)/sif-bot run

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

contracts: $(DEV_STAMP)
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

pytest: $(DEV_STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

test: lint contracts typecheck pytest

bench: $(DEV_STAMP)
	$(BIN)/python tests/bench/ledger_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
