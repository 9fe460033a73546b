# pacsbox — the two commands of the README do all set-up on a fresh machine:
#   make serve   creates .venv, installs pacsbox, starts the archive
#   make test    also installs the test peers (DCMTK, Orthanc, PostgreSQL) and runs every test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: serve test lint bench peers venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/pacsbox serve $(ARGS)

peers:
	bash scripts/install-peers.sh

test: $(STAMP) peers
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

bench: $(STAMP) peers
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
