#!/usr/bin/env bash
# Build the standalone podsup executable with PyInstaller (one file, no Python
# needed where it runs; glibc needed, see docs/standalone-binary.md).
#
#   scripts/build-binary.sh [--deps | --builder] [--dist DIR]
#
#   (default)   build with $PYTHON (default python3). What the build needs and
#               is missing is installed first: the pinned PyInstaller,
#               podsup's own dependencies with its queue extras (editable,
#               like `make deps`), binutils (objdump, strip) with apt-get.
#               Python packages are installed only into a virtualenv, never
#               into the system Python: `make podsup-binary` uses .venv.
#   --deps      first pip-install podsup (with its queue extras) and the
#               pinned PyInstaller into $PYTHON unconditionally (the
#               Dockerfile's throwaway build stage uses this).
#   --builder   only install what the build needs (as the default does), then
#               exit without building (scripts/install-extra.sh uses this).
#   --dist DIR  where to put the executable (default: dist -> dist/podsup).
#
# `make podsup-binary` runs this script; so does the Dockerfile's build stage,
# and tests/packaging builds with it too, so the three never diverge. The
# PyInstaller version is pinned here and nowhere else.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PYINSTALLER_VERSION=6.22.3
PIP=("$PY" -m pip install -q --disable-pip-version-check)
dist=dist
mode=build
while [ $# -gt 0 ]; do
    case "$1" in
        --deps) mode=deps; shift ;;
        --builder) mode=builder; shift ;;
        --dist) [ $# -ge 2 ] || { echo "build-binary.sh: --dist needs a directory" >&2; exit 2; }
                dist=$2; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "build-binary.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
done

have_builder() {
    "$PY" -c "import PyInstaller, sys; sys.exit(PyInstaller.__version__ != '$PYINSTALLER_VERSION')" 2>/dev/null
}
have_runtime() {  # what the executable bundles, queue clients included
    "$PY" -c "import psutil, prometheus_client, yaml, redis, pika" 2>/dev/null
}
in_virtualenv() {
    "$PY" -c "import sys; sys.exit(sys.prefix == sys.base_prefix)" 2>/dev/null
}
need_binutils() {  # PyInstaller reads libraries with objdump and strips with strip
    if ! command -v objdump >/dev/null || ! command -v strip >/dev/null; then
        SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends binutils >/dev/null
    fi
}

if [ "$mode" = deps ]; then
    "${PIP[@]}" --no-cache-dir ".[redis,amqp]" "pyinstaller==$PYINSTALLER_VERSION"
else
    if ! have_builder || ! have_runtime; then
        if ! in_virtualenv; then
            echo "build-binary.sh: $PY lacks PyInstaller $PYINSTALLER_VERSION or podsup's dependencies, and is" \
                 "not a virtualenv (nothing is pip-installed into a system Python): run 'make podsup-binary'" \
                 "(uses .venv) or set PYTHON to a virtualenv's python" >&2
            exit 2
        fi
        have_builder || "${PIP[@]}" "pyinstaller==$PYINSTALLER_VERSION"
        have_runtime || "${PIP[@]}" -e ".[redis,amqp]"
    fi
    need_binutils
    [ "$mode" = builder ] && exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/podsup-pyinstaller.XXXXXX")
trap 'rm -rf "$work"' EXIT
# a private cache: PyInstaller's default (~/.cache/pyinstaller) is shared, and a
# concurrent build's --clean empties it under this one (FileNotFoundError)
export PYINSTALLER_CONFIG_DIR="$work/cache"
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$dist" --workpath "$work" podsup.spec

# Smoke test: the executable starts and knows its subcommands.
"$dist/podsup" --help >/dev/null
echo "built $dist/podsup ($(du -h "$dist/podsup" | cut -f1))"
