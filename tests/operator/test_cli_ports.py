"""``podsup-operator run`` whose liveness or /metrics port is taken (or two
listeners given one port): one line naming the flag, exit 2 — not a
traceback from deep inside kopf or prometheus-client. A real subprocess and
a real listener holding the port; the kubeconfig names a server that is
never contacted (the operator refuses before it starts)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_operator(tmp_path, *argv: str) -> subprocess.CompletedProcess:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE_")}
    # A deadline, not a timing: without the check the operator would run on.
    return subprocess.run([sys.executable, "-m", "podsup_operator.cli", "run", "--no-metrics-api", *argv],
                          capture_output=True, text=True, timeout=120,
                          env={**env, "KUBECONFIG": str(kubeconfig)})


@pytest.mark.parametrize("flag,other", [("--health-port", "--metrics-port"), ("--metrics-port", "--health-port")])
def test_a_taken_port_is_one_line_naming_its_flag(tmp_path, flag, other):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # what the operator binds: all interfaces
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_operator(tmp_path, flag, str(port), other, str(free_port()))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (f"error: {flag}: port {port} on 0.0.0.0 is already in use "
                           f"(choose another with {flag})\n")


def test_two_listeners_on_one_port_are_refused(tmp_path):
    port = str(free_port())
    proc = run_operator(tmp_path, "--health-port", port, "--metrics-port", port)
    assert proc.returncode == 2
    assert proc.stderr == (f"error: --health-port and --metrics-port are both {port}: "
                           "each listener needs a port of its own\n")
