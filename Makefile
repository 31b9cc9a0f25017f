# The two set-up commands of README: `make demo` and `make test`.
PYTHON ?= python3
export PYTHON

.PHONY: deps demo test podsup-binary

deps:
	bash scripts/install-deps.sh

demo: deps
	$(PYTHON) examples/demo.py

test: deps
	$(PYTHON) -m pytest -q

# The standalone podsup executable (no Python needed where it runs) -> dist/podsup
podsup-binary:
	bash scripts/build-binary.sh
