# The README's two commands: `make demo` and `make test`. Both set up .venv when it is missing or
# when setup.py changed, and reuse it otherwise.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.binfeat-installed
CORPUS ?= corpus/small
DEMO_OUT ?= out/demo-features
# a checkout of elastic/ember: `make bench EMBER_SOURCE=DIR` also times EMBER's own code (or set BINFEAT_EMBER_SOURCE)
EMBER_SOURCE ?=

export SPARK_LOCAL_IP ?= 127.0.0.1
export PATH := $(abspath $(BIN)):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint prereqs corpus-small corpus-full bench clean

prereqs:
	@scripts/check-prereqs $(PYTHON)

$(STAMP): setup.py pyproject.toml | prereqs
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@echo "setting up $(VENV) (first run: a few minutes)"
	@$(BIN)/python -m pip install -q --upgrade "pip>=24" setuptools wheel
	@$(BIN)/python -m pip install -q -e '.[airflow,dev]'
	@$(BIN)/python -m pip check >/dev/null || { $(BIN)/python -m pip check; exit 1; }
	@touch $(STAMP)

demo: prereqs $(STAMP)
	@$(BIN)/binfeat corpus sample --profile small $(CORPUS)
	@mkdir -p $(dir $(DEMO_OUT))
	@$(BIN)/binfeat extract $(CORPUS)/manifest.jsonl $(DEMO_OUT)

test: prereqs $(STAMP)
	@$(BIN)/binfeat corpus sample --profile small $(CORPUS) --quiet \
	  || echo "warning: the small sample corpus could not be built (registries unreachable?): corpus tests will be skipped"
	@$(BIN)/ruff check .
	@BINFEAT_CORPUS=$(abspath $(CORPUS)) $(BIN)/python -m pytest

lint: $(STAMP)
	@$(BIN)/ruff check .

corpus-full: prereqs $(STAMP)
	@$(BIN)/binfeat corpus sample --profile full corpus/full

bench: prereqs $(STAMP)
	@$(BIN)/binfeat bench --profile full --out bench-out $(if $(EMBER_SOURCE),--ember-source $(EMBER_SOURCE))

clean:
	rm -rf out bench-out build *.egg-info
