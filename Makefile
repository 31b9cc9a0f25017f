# The two set-up commands of README: `make demo` and `make test`.
# Python packages go into the project's virtual environment .venv (made by
# scripts/venv.sh), never into the system Python; Debian packages (the
# servers the tests start) are installed with apt-get by scripts/install-deps.sh.
VENV := $(CURDIR)/.venv
PYTHON := $(VENV)/bin/python
export PYTHON
export PODSUP_VENV := $(VENV)
# the venv's scripts (podsup, podsup-operator, pytest) first, for every child
export PATH := $(VENV)/bin:$(PATH)

.PHONY: deps demo test podsup-binary

deps:
	bash scripts/install-deps.sh

demo: deps
	$(PYTHON) examples/demo.py

test: deps
	$(PYTHON) -m pytest -q

# The standalone podsup executable (no Python needed where it runs) -> dist/podsup;
# installs its pinned builder (PyInstaller) into .venv first if it is missing.
podsup-binary:
	bash scripts/venv.sh
	bash scripts/build-binary.sh
