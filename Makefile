# The two commands of the README. Both work on a fresh machine with only Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv

.PHONY: venv demo test lint bench generate clean

$(VENV)/.installed: pyproject.toml requirements/dev.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip uv
	$(UV) pip install --python $(PY) -q -r requirements/dev.lock
	$(UV) pip install --python $(PY) -q --no-deps -e .
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) tools/demo.py

test: venv lint
	$(PY) -m pytest -q -p no:cacheprovider

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Regenerate everything derived from the models (tests fail when these are stale).
generate: venv
	$(PY) tools/gen_k8s_models.py
	$(PY) -m taskrun.api.crd > crds/taskrun.yaml
	$(PY) tools/gen_api_docs.py

bench: venv
	$(UV) pip install --python $(PY) -q matplotlib
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
