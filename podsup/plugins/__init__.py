"""Plug-ins: what observes the pool and asks the loop for changes.

HTTP (/metrics, /healthz, /readyz), the Prometheus collectors, the
multiprocess directory, the queue-depth probe, the watchdog and the control
socket server. Each is an Extension (podsup.core.plugin): it sees the loop
only through the hooks the loop calls and the narrow LoopHandle it is given
in ``attach``; it never imports podsup.loop (an import-linter contract
checks it). ``podsup.cli.assemble`` decides which ones ``podsup run`` installs.
"""
