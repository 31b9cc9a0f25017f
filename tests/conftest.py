"""Shared test configuration.

Fixtures that start real servers (redis-server, rabbitmq-server, Prometheus)
live in tests/integration/servers.py and bind free loopback ports; no test
sleeps for a fixed time: use ``tests.waiting.wait_for``.
"""
