# Every target sets up a fresh machine first (venv, pinned dependencies, Java check).
BIN := .venv/bin
STAMP := .venv/.installed

.PHONY: demo test lint bench dev setup clean

demo: $(STAMP)  ## load the bundled real sample archive through Dagster, offline
	$(BIN)/bovespa demo

test: $(STAMP)  ## the test suite
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)  ## performance figures (medians of several runs)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/refine.py
	$(BIN)/python bench/query.py

dev: $(STAMP)  ## the Dagster UI on this project's instance
	$(BIN)/bovespa dev

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/setup.sh
	scripts/setup.sh

clean:
	rm -rf .venv .bovespa
