"""``podsup-operator run`` with no cluster to talk to: one line naming what it
looked for, exit 2 — not kopf's login traceback retried forever. A real
subprocess (the console script's module) with an empty HOME, no KUBECONFIG
and no in-cluster service environment."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest


def run_operator(tmp_path, *argv: str, **env: str) -> subprocess.CompletedProcess:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    base = {k: v for k, v in os.environ.items()
            if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")}
    # A deadline, not a timing: without the check the operator never exits.
    return subprocess.run([sys.executable, "-m", "podsup_operator.cli", "run", *argv], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path, env={**base, "HOME": str(home), **env})


@pytest.mark.parametrize("argv", [[], ["--no-metrics-api"], ["--namespace", "team-a"]])
def test_no_kubeconfig_and_not_in_a_cluster_is_one_line_and_exit_2(tmp_path, argv):
    proc = run_operator(tmp_path, *argv)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("error: no Kubernetes credentials: ")
    assert "KUBECONFIG is not set" in line
    assert f"{tmp_path / 'home' / '.kube' / 'config'} does not exist" in line
    assert "not in a cluster (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT not set)" in line


def test_a_kubeconfig_that_is_not_there_or_broken_is_named(tmp_path):
    proc = run_operator(tmp_path, KUBECONFIG=str(tmp_path / "nope"))
    assert proc.returncode == 2 and f"KUBECONFIG={tmp_path / 'nope'} does not exist" in proc.stderr
    broken = tmp_path / "broken"
    broken.write_text("apiVersion: v1\nkind: Config\nclusters: [\n")
    proc = run_operator(tmp_path, KUBECONFIG=str(broken))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"KUBECONFIG={broken} is unusable (" in proc.stderr


def test_in_a_pod_without_a_service_account_token_says_so(tmp_path):
    proc = run_operator(tmp_path, KUBERNETES_SERVICE_HOST="10.0.0.1", KUBERNETES_SERVICE_PORT="443")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "the in-cluster service account is unusable (" in proc.stderr
