"""WorkerPool → Service: the declared ports plus podsup's metrics port (so a
ServiceMonitor or Prometheus' endpoints discovery can scrape every pod)."""
from __future__ import annotations

from podsup import names

from .common import metadata, selector_labels, spec
from .deployment import metrics_port


def build_service(pool: dict) -> dict:
    ports = [{"name": p["name"], "port": p.get("servicePort", p["containerPort"]),
              "targetPort": p["name"], "protocol": p.get("protocol", "TCP")}
             for p in spec(pool).get("ports") or []]
    ports.append({"name": names.METRICS_PORT_NAME, "port": metrics_port(pool),
                  "targetPort": names.METRICS_PORT_NAME, "protocol": "TCP"})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(pool),
        "spec": {"type": "ClusterIP", "selector": selector_labels(pool), "ports": ports},
    }
