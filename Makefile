# The two set-up commands of README: `make demo` and `make test`.
PYTHON ?= python3
export PYTHON

.PHONY: deps demo test

deps:
	bash scripts/install-deps.sh

demo: deps
	$(PYTHON) examples/demo.py

test: deps
	$(PYTHON) -m pytest -q
