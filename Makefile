# medbench: two commands for users (README), the rest for developers.
#   make book   install into .venv, run the demo profile, build the book into _build/html
#               (make book REPOSITORY=https://github.com/ORG/medbench RELEASE=v1.0: with launch buttons)
#   make test   install into .venv and run the test suite (offline)
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= demo
BIN := $(VENV)/bin
STAMP := $(VENV)/.medbench-installed
export HF_HUB_OFFLINE ?= 1

.PHONY: install system-deps book test test-fast lab lock clean clean-results

install: $(STAMP)

# Reinstalls when the dependency list or the lock changes.
$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e ".[book,lab,test,lite0]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (medbench)" >/dev/null
	touch $@

# REPOSITORY / RELEASE: where the book is published (default: _config.yml's repository.url and .branch)
book: install
	$(BIN)/medbench book --profile $(PROFILE) $(if $(REPOSITORY),--repository $(REPOSITORY),) $(if $(RELEASE),--release $(RELEASE),)

# System packages the tests use: a real single-node Slurm (slurm-wlm, munge) and Chromium (the browser test).
# Installed with apt-get on Debian when missing and running as root (as CI does); elsewhere those tests say why
# they are skipped.
system-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (apt-get) for the browser test"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; \
	  else echo "note: chromium is not installed and cannot be installed here: the browser test is skipped"; fi; \
	fi
	@if ! command -v sbatch >/dev/null 2>&1 || ! { command -v munged >/dev/null 2>&1 || [ -x /usr/sbin/munged ]; }; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing slurm-wlm and munge (apt-get) for the Slurm test"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null; }; \
	  else echo "note: Slurm is not installed and cannot be installed here (needs Debian and root): its test is skipped"; fi; \
	fi

test: install system-deps
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
