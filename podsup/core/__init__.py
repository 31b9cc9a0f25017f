"""The pure core: what podsup decides, as plain functions over plain data.

Worker and pool states, the respawn/crash-storm policy, the commands the loop
accepts, the immutable pool snapshot, liveness and readiness, status
rendering, the worker report protocol, the configuration model, and the
plug-in interface (podsup.core.plugin). No I/O, no threads, no processes,
and no import from the layers above (podsup.host, podsup.loop,
podsup.plugins, podsup.cli): the import-linter contracts in pyproject.toml
fail the test suite otherwise.
"""
