#!/usr/bin/env bash
# Install everything the demo and the tests need on a fresh Debian machine
# with Python >= 3.11: the Debian servers the integration tests start
# (redis-server, rabbitmq-server, prometheus/promtool) and the Python packages.
# Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

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

"$PY" -m pip install -q --disable-pip-version-check -e ".[test,operator,redis,amqp]"
# helm-sdkpy bundles Helm's Go library (chart lint); its metadata asks for
# Python 3.12 but the lint action works on 3.11.
if [ -f scripts/install-extra.sh ]; then bash scripts/install-extra.sh; fi
