# Every target sets up a fresh machine first (venv, pinned dependencies, Java check).
BIN := .venv/bin
STAMP := .venv/.installed

.PHONY: demo test lint infra-check package bench dev setup clean

demo: $(STAMP)  ## load the bundled real sample archive through Dagster, offline
	$(BIN)/bovespa demo

test: $(STAMP)  ## the test suite
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

INFRA_BIN := .venv-infra/bin
INFRA_STAMP := .venv-infra/.installed
INFRA_TEMPLATES := infra/artifacts.yaml infra/template.yaml

infra-check: $(INFRA_STAMP)  ## CloudFormation: cfn-lint (AWS's resource schemas), then checkov (skips justified inline)
	$(INFRA_BIN)/cfn-lint $(INFRA_TEMPLATES)
	$(INFRA_BIN)/checkov --quiet --compact --skip-download --framework cloudformation $(addprefix -f ,$(INFRA_TEMPLATES))

$(INFRA_STAMP): infra/requirements-ci.txt scripts/setup-infra.sh
	scripts/setup-infra.sh

package: $(STAMP)  ## build the Lambda zip and the Glue artifacts and upload them: make package BUCKET=<artifacts bucket>
	$(BIN)/python -m bovespa_assets.deploy package --bucket "$(BUCKET)"

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
	rm -rf .venv .venv-infra .bovespa build
