"""Fixtures for integration tests: real servers on free loopback ports.

Session scoped (each starts once and is stopped at the end); import nothing
from here, just name the fixture: ``redis_server``, ``rabbitmq_server``,
``prometheus_server``. A missing Debian package skips the test with the
package to install.
"""
from __future__ import annotations

import shutil

import pytest

from tests.integration import servers


def _session_server(cls, name: str, package: str):
    directory = servers.server_dir(name)
    server = cls(directory)
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
        if "not installed" in str(exc):
            pytest.skip(f"{exc} (Debian package {package})")
        raise
    except BaseException:
        server.stop()
        raise
    return server, directory


@pytest.fixture(scope="session")
def redis_server():
    server, directory = _session_server(servers.RedisServer, "redis", "redis-server")
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def rabbitmq_server():
    server, directory = _session_server(servers.RabbitMQServer, "rabbitmq", "rabbitmq-server")
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def prometheus_server():
    server, directory = _session_server(servers.PrometheusServer, "prometheus", "prometheus")
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)
