# One command for the main job, one for the tests (see README).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The exact versions CI tested (runtime, test and build dependencies). Every
# install here goes through it; `make lock` moves it to the newest releases.
LOCK   := constraints.txt
# PIP_CONSTRAINT, unlike -c, also reaches pip's isolated build environment
# (setuptools, mypy for mypyc), so the build is pinned too.
PIP    := PIP_CONSTRAINT=$(CURDIR)/$(LOCK) $(BIN)/pip install --quiet

.PHONY: setup run test test-setup test-deps test-newest lock lint bench bundle pack deb

# The correlator modules setup.py compiles with mypyc: editing one rebuilds.
COMPILED := $(shell $(PYTHON) setup.py --compiled-sources)

# Main job's install: the package and msgspec (the `fast` extra), nothing for tests.
$(BIN)/osq-dbwatch: pyproject.toml setup.py $(LOCK) $(COMPILED)
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e '.[fast]'
	$(BIN)/python setup.py --compiled-status
	touch $@

setup: $(BIN)/osq-dbwatch

# Main job: what the extension's tables see on this host right now (a summary;
# `$(BIN)/osq-dbwatch tables --all` shows every row).
run: setup
	$(BIN)/osq-dbwatch tables

# Test and bundle extras on top of the main install.
$(VENV)/.test-extras: $(BIN)/osq-dbwatch $(LOCK)
	$(PIP) -e '.[test,fast,bundle,spark]'
	touch $@

test-setup: $(VENV)/.test-extras

# Test dependencies: database servers and clients (Debian packages, mongosh
# from npm). Idempotent; needs root to install, skipped when all are present.
test-deps:
	bash tests/install-deps.sh

test: test-deps test-setup
	$(BIN)/python -m pytest -q

# Lint extra (ruff, mypy, stubs) on top of the main install, pinned by the lock.
$(VENV)/.lint-extras: $(BIN)/osq-dbwatch $(LOCK)
	$(PIP) -e '.[lint]'
	touch $@

# Linter and strict type check over src/ (settings: [tool.ruff], [tool.mypy]
# in pyproject.toml). `ruff format` is not applied yet.
lint: $(VENV)/.lint-extras
	$(BIN)/ruff check src/
	$(BIN)/mypy --strict

# The correlator and command-line tests against the newest releases of every
# dependency (no lock), in a venv of their own: a release that breaks us shows
# up here by name. CI runs it after `make test`.
NEWEST := .venv-newest
test-newest:
	rm -rf $(NEWEST)
	$(PYTHON) -m venv $(NEWEST)
	$(NEWEST)/bin/pip install --quiet --upgrade pip
	$(NEWEST)/bin/pip install --quiet --upgrade --upgrade-strategy eager -e '.[test,fast]'
	$(NEWEST)/bin/pip freeze --exclude-editable | grep -iE '^(msgspec|pyyaml|osquery|tzdata|hypothesis|pytest)=='
	$(NEWEST)/bin/python -m pytest -q tests/test_correlate_*.py tests/test_cmdline.py

# Move the lock to the newest releases on purpose: resolve afresh, run the
# whole suite on them, and only then rewrite constraints.txt.
lock: test-deps
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip setuptools wheel
	.venv-lock/bin/pip install --quiet --upgrade --upgrade-strategy eager -e '.[test,fast,bundle,spark,lint]'
	.venv-lock/bin/pip install --quiet "$$(grep -o 'mypy==[0-9.]*' pyproject.toml)"
	.venv-lock/bin/python -m pytest -q
	{ echo "# Exact versions CI tested: runtime, test, bundle, spark, lint and build dependencies."; \
	  echo "# Written by 'make lock' (resolve afresh, run the suite, then write); do not edit by hand."; \
	  .venv-lock/bin/pip freeze --exclude-editable --all | LC_ALL=C sort -f; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .venv-lock
	@echo "constraints.txt rewritten; review 'git diff constraints.txt' and commit it"

bench: setup test-setup
	$(BIN)/python bench/run_all.py

# Rendered defaults (built-in config: --defaults ignores /etc/osq-dbwatch).
pack: setup
	$(BIN)/osq-dbwatch pack render --defaults --format osquery --output packs
	$(BIN)/osq-dbwatch pack render --defaults --format fleet --output packs/fleet
	$(BIN)/osq-dbwatch pack render --defaults --format fleet --tier free --output packs/fleet-free
	$(BIN)/osq-dbwatch pack render --defaults --format conf --output deploy/osquery.conf.d
	$(BIN)/osq-dbwatch pack check

# One-file extension executable dist/osq_dbwatch.ext (PyInstaller, `bundle` extra).
bundle: setup
	$(PIP) -e '.[bundle]'
	PYTHON=$(BIN)/python sh deploy/build-bundle.sh

# Debian package dist/osq-dbwatch_<version>_<arch>.deb (dpkg-deb, no network):
# the bundle, packs, Fleet bundles, deploy files, the correlator's unit and config.
deb: bundle
	sh deploy/build-deb.sh
