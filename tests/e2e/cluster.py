"""Shared helpers of the e2e tests: is there a cluster, can it run pods,
kubectl, a throw-away namespace and the operator as a subprocess.

Two separate skip reasons, so a run on a bare control plane (kube-apiserver +
kube-controller-manager, no kubelet) still exercises everything that needs
only the API: :func:`cluster_reason` (no KUBECONFIG, kubectl missing, the
server does not answer) skips the whole directory; :func:`pods_reason` (no
Ready node) skips only the tests that need pods Running.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "workerpools.podsup.io.yaml"
#: The resource, fully qualified: a bare "workerpool" is ambiguous when another
#: group on the same cluster also has a WorkerPool kind.
WP = "workerpools.podsup.io"


@functools.cache
def cluster_reason() -> str | None:
    """Why there is no cluster to test against (None: there is one)."""
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig:
        return "no KUBECONFIG: the e2e tests need a real cluster (or a bare kube-apiserver)"
    if not any(os.path.isfile(p) for p in kubeconfig.split(os.pathsep) if p):
        return f"KUBECONFIG={kubeconfig} names no existing file"
    if not shutil.which("kubectl"):
        return "kubectl not found"
    try:
        proc = subprocess.run(["kubectl", "version", "-o", "json"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "the cluster in KUBECONFIG did not answer within 20 s"
    if proc.returncode != 0 or "serverVersion" not in proc.stdout:
        return f"the cluster in KUBECONFIG is unreachable: {proc.stderr.strip()[:200]}"
    return None


@functools.cache
def pods_reason() -> str | None:
    """Why pods cannot run on the cluster (None: at least one node is Ready)."""
    reason = cluster_reason()
    if reason:
        return reason
    proc = subprocess.run(["kubectl", "get", "nodes", "-o", "json"], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        return f"cannot list nodes: {proc.stderr.strip()[:200]}"
    ready = [n for n in json.loads(proc.stdout).get("items", [])
             if any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (n.get("status") or {}).get("conditions") or [])]
    if not ready:
        return "no Ready node (a control plane without kubelets): pods cannot run"
    return None


def kubectl(*args: str, input: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess:
    proc = subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
    return proc


def get(kind: str, name: str, ns: str) -> dict | None:
    """The object as JSON, managedFields included (kubectl hides them unless
    asked, and server-side apply ownership is part of what is tested)."""
    proc = kubectl("get", kind, name, "-n", ns, "-o", "json", "--show-managed-fields", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def condition(obj: dict | None, type_: str) -> dict:
    return next((c for c in ((obj or {}).get("status") or {}).get("conditions") or [] if c.get("type") == type_), {})


def events_of(kind: str, name: str, ns: str) -> list[dict]:
    proc = kubectl("get", "events", "-n", ns, "-o", "json",
                   "--field-selector", f"involvedObject.kind={kind},involvedObject.name={name}", check=False)
    return json.loads(proc.stdout).get("items", []) if proc.returncode == 0 else []


def owned(obj: dict | None, pool_uid: str) -> bool:
    return bool(obj) and any(r.get("uid") == pool_uid and r.get("controller")
                             for r in obj["metadata"].get("ownerReferences", []))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_crd() -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kubectl("wait", "--for=condition=Established", "crd/workerpools.podsup.io", "--timeout=60s")


@contextlib.contextmanager
def namespace(prefix: str = "podsup-e2e") -> Iterator[str]:
    ns = f"{prefix}-{uuid.uuid4().hex[:6]}"
    install_crd()
    kubectl("create", "namespace", ns)
    try:
        yield ns
    finally:
        kubectl("delete", "namespace", ns, "--wait=false", check=False)


def operator_args(ns: str, *extra: str, metrics_port: int | None = None) -> list[str]:
    return [sys.executable, "-m", "podsup_operator.cli", "run", "--namespace", ns,
            "--health-port", str(free_port()), "--metrics-port", str(metrics_port or free_port()), *extra]


def operator_env(**extra: str) -> dict[str, str]:
    """Run this checkout's operator, not whatever copy is installed."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), str(ROOT),
                                                         os.environ.get("PYTHONPATH", "")]), **extra}


def operator_help() -> str:
    return subprocess.run([sys.executable, "-m", "podsup_operator.cli", "run", "--help"], capture_output=True,
                          text=True, env=operator_env(), timeout=60).stdout


@contextlib.contextmanager
def operator(ns: str, log: Path, *extra: str, metrics_port: int | None = None,
             env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """``podsup-operator run --namespace NS EXTRA...`` for the block; its
    output goes to ``log``."""
    with open(log, "w") as out:
        proc = subprocess.Popen(operator_args(ns, *extra, metrics_port=metrics_port), stdout=out,
                                stderr=subprocess.STDOUT, env=operator_env(**(env or {})))
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def apply_example(name: str, ns: str) -> dict:
    pool = yaml.safe_load((ROOT / "examples" / name).read_text())
    pool["metadata"]["namespace"] = ns
    kubectl("apply", "-f", "-", input=yaml.safe_dump(pool))
    return pool


def apply(obj: dict, check: bool = True) -> subprocess.CompletedProcess:
    return kubectl("apply", "-f", "-", input=yaml.safe_dump(obj), check=check)
