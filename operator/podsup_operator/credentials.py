"""Where ``podsup-operator run`` finds its cluster, checked once before kopf
starts.

kopf's own login, finding no credentials, logs a long traceback and retries
forever; a user who simply has no kubeconfig (or runs the operator outside
a pod) needs one line saying what was looked for. The sources are the ones
kopf's login and our client use, in their order: the pod's service account
(in a cluster), then the kubeconfig (``$KUBECONFIG``, else
``~/.kube/config``). Nothing here talks to the API server: an unreachable
server is a runtime condition kopf retries, not bad input.
"""
from __future__ import annotations

import os


class NoCredentials(Exception):
    """Neither source gave a usable configuration; the message says what was tried."""


def _first_line(exc: BaseException) -> str:
    """The error on one line (PyYAML's spans three)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def find() -> str:
    """Load the client configuration as kopf will; return where it came from,
    or raise :class:`NoCredentials` naming every place looked at."""
    import kubernetes
    from kubernetes.config import kube_config

    try:
        kubernetes.config.load_incluster_config()
        return "the pod's service account"
    except kubernetes.config.ConfigException as exc:
        if os.environ.get("KUBERNETES_SERVICE_HOST") and os.environ.get("KUBERNETES_SERVICE_PORT"):
            in_cluster = f"the in-cluster service account is unusable ({_first_line(exc)})"
        else:
            in_cluster = "not in a cluster (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT not set)"
    location = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    paths = [os.path.expanduser(p) for p in location.split(os.pathsep) if p]
    named = f"KUBECONFIG={location}" if os.environ.get("KUBECONFIG") else f"{paths[0] if paths else location}"
    try:
        kubernetes.config.load_kube_config()
        return f"kubeconfig {named}"
    except Exception as exc:  # noqa: BLE001 - ConfigException, OSError, YAMLError: all mean "no usable file"
        if not any(os.path.exists(p) for p in paths):
            kubeconfig = f"{named} does not exist" if os.environ.get("KUBECONFIG") else \
                f"KUBECONFIG is not set and {named} does not exist"
        else:
            kubeconfig = f"{named} is unusable ({_first_line(exc)})"
    raise NoCredentials(f"no Kubernetes credentials: {kubeconfig}, and {in_cluster}; "
                        "point KUBECONFIG at a kubeconfig file or run the operator in a pod")
