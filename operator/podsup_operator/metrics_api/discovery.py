"""Discovery documents for the two group-versions (pure).

The kube-aggregator proxies ``/apis/<group>/<version>`` to us and checks it
answers; controllers (the HPA's REST mapper, the namespace controller) read
the APIResourceList to learn which resources exist. A group-version that
answers discovery badly blocks namespace deletion cluster-wide, so these
documents must always be served, whatever the state of brokers and pods.
"""
from __future__ import annotations

from podsup import names

from .types import CUSTOM_GROUP, CUSTOM_GV, CUSTOM_VERSION, EXTERNAL_GROUP, EXTERNAL_GV, EXTERNAL_VERSION

#: The External metrics we serve (one per WorkerPool queue, selected by label).
EXTERNAL_METRICS = (names.METRIC_QUEUE_DEPTH,)
#: The per-pod metrics we serve as ``pods/<metric>``.
POD_METRICS = (names.METRIC_REQUESTS_PER_SECOND, names.METRIC_BUSY_RATIO, names.METRIC_POOL_SATURATION)


def external_resources() -> dict:
    return {
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": EXTERNAL_GV,
        "resources": [
            {"name": m, "singularName": "", "namespaced": True,
             "kind": "ExternalMetricValueList", "verbs": ["get"]}
            for m in EXTERNAL_METRICS
        ],
    }


def custom_resources() -> dict:
    return {
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": CUSTOM_GV,
        "resources": [
            {"name": f"pods/{m}", "singularName": "", "namespaced": True,
             "kind": "MetricValueList", "verbs": ["get"]}
            for m in POD_METRICS
        ],
    }


def _group(group: str, version: str) -> dict:
    gv = {"groupVersion": f"{group}/{version}", "version": version}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group,
            "versions": [gv], "preferredVersion": gv}


def group(name: str) -> dict | None:
    if name == EXTERNAL_GROUP:
        return _group(EXTERNAL_GROUP, EXTERNAL_VERSION)
    if name == CUSTOM_GROUP:
        return _group(CUSTOM_GROUP, CUSTOM_VERSION)
    return None


def group_list() -> dict:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [group(EXTERNAL_GROUP), group(CUSTOM_GROUP)]}


def resources(group_name: str, version: str) -> dict | None:
    if (group_name, version) == (EXTERNAL_GROUP, EXTERNAL_VERSION):
        return external_resources()
    if (group_name, version) == (CUSTOM_GROUP, CUSTOM_VERSION):
        return custom_resources()
    return None
