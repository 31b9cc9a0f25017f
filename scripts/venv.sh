#!/usr/bin/env bash
# Create the project's virtual environment (default .venv) if it is missing:
# `make deps` / `make demo` / `make test` / `make podsup-binary` install into
# it, never into the system Python (whose pip-installed upgrades broke other
# programs' packages on a fresh machine, and which Debian marks externally
# managed). Idempotent; prints nothing when the environment exists.
#
#   scripts/venv.sh            env: PODSUP_VENV (default .venv),
#                                   BASE_PYTHON (default python3, >= 3.11)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${PODSUP_VENV:-.venv}
base=${BASE_PYTHON:-python3}

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import pip" 2>/dev/null; then
    exit 0
fi
if ! "$base" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "scripts/venv.sh: $base is missing or older than Python 3.11 (set BASE_PYTHON)" >&2
    exit 2
fi
# Debian splits venv's pip bootstrap (ensurepip) into python3-venv
if ! "$base" -c "import ensurepip, venv" 2>/dev/null; then
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi
if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ]; then
    echo "scripts/venv.sh: $venv exists and is not a virtual environment; move it away" >&2
    exit 2
fi
# a half-made one (interrupted, or without pip) is made again
"$base" -m venv --clear "$venv"
echo "created the virtual environment $venv ($("$venv/bin/python" --version))"
