# One command for the main job, one for the tests (see README).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup run test test-deps bench bundle pack

$(BIN)/osq-dbwatch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,fast]'
	touch $@

setup: $(BIN)/osq-dbwatch

# Main job: show what the extension's tables see on this host right now.
run: setup
	$(BIN)/osq-dbwatch tables

# Test dependencies: database servers and clients (Debian packages, mongosh
# from npm). Idempotent; needs root to install, skipped when all are present.
test-deps:
	bash tests/install-deps.sh

test: test-deps setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/run_all.py

pack: setup
	$(BIN)/osq-dbwatch pack render --format osquery > packs/dbwatch.conf
