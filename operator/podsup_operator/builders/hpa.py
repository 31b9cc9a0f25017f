"""WorkerPool → HorizontalPodAutoscaler (autoscaling/v2).

Per-pod rates (requests/s, busy ratio) are ``Pods`` metrics averaged over
pods; the queue's depth is a global backlog, so it is an ``External`` metric
with an AverageValue target (backlog / replicas), never a Pods metric. Metric
names and the selector label come from podsup.names, shared with podsup's
exporter, the metrics API and the prometheus-adapter rules.
"""
from __future__ import annotations

from podsup import names

from .common import metadata, pool_name, section


def _quantity(value: float) -> str:
    """A Kubernetes quantity for a number: integers plain, fractions in
    milli-units ("700m") so the HPA compares without float noise."""
    if float(value).is_integer():
        return str(int(value))
    return f"{round(value * 1000)}m"


def hpa_metrics(pool: dict) -> list[dict]:
    targets = section(pool, "autoscaling").get("targets") or {}
    metrics: list[dict] = []
    if "queueDepthPerReplica" in targets:
        metrics.append({"type": "External", "external": {
            "metric": {"name": names.METRIC_QUEUE_DEPTH,
                       "selector": {"matchLabels": {names.EXTERNAL_SELECTOR_LABEL: pool_name(pool)}}},
            "target": {"type": "AverageValue", "averageValue": _quantity(targets["queueDepthPerReplica"])}}})
    if "requestsPerSecondPerReplica" in targets:
        metrics.append({"type": "Pods", "pods": {
            "metric": {"name": names.METRIC_REQUESTS_PER_SECOND},
            "target": {"type": "AverageValue", "averageValue": _quantity(targets["requestsPerSecondPerReplica"])}}})
    if "busyWorkersPercent" in targets:
        # dynamic pools grow inside the pod first: the busy target reads busy / max
        # (podsup_pool_saturation), so pods are added only when no pod can grow any more
        busy = names.METRIC_POOL_SATURATION if section(pool, "dynamicProcesses") else names.METRIC_BUSY_RATIO
        metrics.append({"type": "Pods", "pods": {
            "metric": {"name": busy},
            "target": {"type": "AverageValue", "averageValue": _quantity(targets["busyWorkersPercent"] / 100)}}})
    if "cpuPercent" in targets:
        metrics.append({"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": targets["cpuPercent"]}}})
    return metrics


def build_hpa(pool: dict) -> dict | None:
    """The HPA, or None when autoscaling is off. minReplicas 0 (scale to
    zero) is handled outside the HPA, which gets at least 1."""
    auto = section(pool, "autoscaling")
    if not auto.get("enabled"):
        return None
    hpa_spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": pool_name(pool)},
        "minReplicas": max(1, auto.get("minReplicas", 1)),
        "maxReplicas": auto["maxReplicas"],
        "metrics": hpa_metrics(pool),
    }
    if auto.get("behavior"):
        hpa_spec["behavior"] = auto["behavior"]
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": metadata(pool), "spec": hpa_spec}
