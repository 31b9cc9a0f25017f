#!/usr/bin/env bash
# Build the standalone podsup executable with PyInstaller (one file, no Python
# needed where it runs; glibc needed, see README "The standalone binary").
#
#   scripts/build-binary.sh [--deps] [--dist DIR]
#
#   --deps      first pip-install what the build needs (podsup with its queue
#               extras and the pinned PyInstaller); the Dockerfile uses this.
#   --dist DIR  where to put the executable (default: dist -> dist/podsup).
#
# `make podsup-binary` runs this script; so does the Dockerfile's build stage,
# and tests/packaging builds with it too, so the three never diverge.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PYINSTALLER_VERSION=6.22.3
dist=dist
deps=0
while [ $# -gt 0 ]; do
    case "$1" in
        --deps) deps=1; shift ;;
        --dist) [ $# -ge 2 ] || { echo "build-binary.sh: --dist needs a directory" >&2; exit 2; }
                dist=$2; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "build-binary.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
done

if [ "$deps" = 1 ]; then
    "$PY" -m pip install --no-cache-dir -q --disable-pip-version-check \
        ".[redis,amqp]" "pyinstaller==$PYINSTALLER_VERSION"
fi
if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
    echo "build-binary.sh: PyInstaller is not installed for $PY; run with --deps" \
         "or: $PY -m pip install pyinstaller==$PYINSTALLER_VERSION" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/podsup-pyinstaller.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$dist" --workpath "$work" podsup.spec

# Smoke test: the executable starts and knows its subcommands.
"$dist/podsup" --help >/dev/null
echo "built $dist/podsup ($(du -h "$dist/podsup" | cut -f1))"
