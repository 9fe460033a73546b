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
	$(PY) -m compileall -q src >/dev/null
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

# byte-compiled as `pip install` does for a user (an editable install compiles on first import,
# unless PYTHONDONTWRITEBYTECODE is set: then every start would recompile ~30 modules, 40 ms)
bench: $(STAMP) peers
	$(PY) -m compileall -q src >/dev/null
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
