# medbench: two commands for users (README), the rest for developers.
#   make book   install into .venv, run the demo profile, build the book into _build/html
#   make test   install into .venv and run the test suite (offline)
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= demo
BIN := $(VENV)/bin
STAMP := $(VENV)/.medbench-installed
export HF_HUB_OFFLINE ?= 1

.PHONY: install book test test-fast lab lock clean clean-results

install: $(STAMP)

# Reinstalls when the dependency list or the lock changes.
$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e ".[book,lab,test,lite0]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (medbench)" >/dev/null
	touch $@

book: install
	$(BIN)/medbench book --profile $(PROFILE)

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

lab: install
	$(BIN)/jupyter lab --notebook-dir=. $(if $(filter 0,$(shell id -u)),--allow-root,) notebooks/

# Rebuild the lock from a fresh environment with the newest versions pyproject.toml allows.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet "torch==2.14.1" "torchvision==0.29.1" -e ".[book,lab,test,lite0]"
	{ sed -n '1,/^# Python/p' requirements/constraints.txt; .venv-lock/bin/pip freeze --exclude-editable | grep -v '^-e'; } > requirements/constraints.txt.new
	mv requirements/constraints.txt.new requirements/constraints.txt && rm -rf .venv-lock

clean:
	rm -rf _build book/executed book/generated

clean-results:
	rm -rf results
