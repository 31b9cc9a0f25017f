#!/usr/bin/env bash
# Install everything the demo and the tests need on a fresh Debian machine
# with Python >= 3.11: the Debian servers the integration tests start
# (redis-server, rabbitmq-server, prometheus/promtool) with apt-get, and the
# Python packages into the project's virtual environment (.venv, made by
# scripts/venv.sh; never the system Python). `make demo` / `make test` run
# this, then use .venv/bin/python.
# Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${PODSUP_VENV:-.venv}

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v rabbitmq-server >/dev/null || [ -x /usr/sbin/rabbitmq-server ] || need_apt+=(rabbitmq-server)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v unshare >/dev/null || need_apt+=(util-linux)
# the report-protocol examples (examples/workers/report_worker.{sh,php}) are tested
command -v socat >/dev/null || need_apt+=(socat)
command -v php >/dev/null || need_apt+=(php-cli)
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

bash scripts/venv.sh
PY="$venv/bin/python"
"$PY" -m pip install -q --disable-pip-version-check -e ".[test,operator,redis,amqp]"
# test-only tools (Helm's library, hadolint, the binary's pinned builder)
if [ -f scripts/install-extra.sh ]; then PYTHON="$PY" bash scripts/install-extra.sh; fi
