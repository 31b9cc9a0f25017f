#!/usr/bin/env bash
# Create the operator's virtualenv (podsup-operator and podsup, with the
# operator's dependencies) at DEST, from a clean copy of the sources so the
# work tree gets no build/ or *.egg-info litter.
#
#   scripts/build-operator-venv.sh DEST
#
# The Dockerfile's operator stage runs exactly this (DEST=/opt/podsup/venv);
# tests/packaging runs it too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ $# -ne 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    echo "usage: scripts/build-operator-venv.sh DEST" >&2
    exit 2
fi
dest=$1
src=$(mktemp -d "${TMPDIR:-/tmp}/podsup-src.XXXXXX")
trap 'rm -rf "$src"' EXIT
cp -r pyproject.toml README.md podsup operator "$src/"
find "$src" -name __pycache__ -prune -exec rm -rf {} +

# No pip (nor setuptools) inside the venv: the image never installs at run
# time. The outer pip installs into it (pip >= 22.3: --python).
"$PY" -m venv --without-pip "$dest"
"$PY" -m pip --python "$dest/bin/python" install -q --disable-pip-version-check "$src[operator]"
# Smoke test: both console scripts start.
"$dest/bin/podsup-operator" --help >/dev/null
"$dest/bin/podsup" --help >/dev/null
echo "operator virtualenv ready at $dest"
