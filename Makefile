# One command for the main job, one for the tests (see README).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup run test test-deps bench bundle pack

# The correlator modules setup.py compiles with mypyc: editing one rebuilds.
COMPILED := $(shell $(PYTHON) setup.py --compiled-sources)

$(BIN)/osq-dbwatch: pyproject.toml setup.py $(COMPILED)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,fast,bundle]'
	$(BIN)/python setup.py --compiled-status
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

# Rendered defaults (built-in config: --defaults ignores /etc/osq-dbwatch).
pack: setup
	$(BIN)/osq-dbwatch pack render --defaults --format osquery --output packs
	$(BIN)/osq-dbwatch pack render --defaults --format fleet --output packs/fleet
	$(BIN)/osq-dbwatch pack render --defaults --format conf --output deploy/osquery.conf.d
	$(BIN)/osq-dbwatch pack check

# One-file extension executable dist/osq_dbwatch.ext (PyInstaller, `bundle` extra).
bundle: setup
	$(BIN)/pip install --quiet -e '.[bundle]'
	PYTHON=$(BIN)/python sh deploy/build-bundle.sh
