"""The API objects the metrics API returns, as plain dicts (pure).

Shapes follow k8s.io/metrics: ``ExternalMetricValueList``
(external.metrics.k8s.io/v1beta1) and ``MetricValueList``
(custom.metrics.k8s.io/v1beta2, with ``describedObject`` and ``metric``
{name, selector}); both carry the window under the JSON key ``window``
(the Go field WindowSeconds is tagged ``json:"window"``). Errors are
``metav1.Status`` objects so kubectl and the HPA controller print a reason
instead of a parse failure.
"""
from __future__ import annotations

import datetime as _dt
import math
from typing import Mapping

EXTERNAL_GROUP = "external.metrics.k8s.io"
EXTERNAL_VERSION = "v1beta1"
CUSTOM_GROUP = "custom.metrics.k8s.io"
CUSTOM_VERSION = "v1beta2"
EXTERNAL_GV = f"{EXTERNAL_GROUP}/{EXTERNAL_VERSION}"
CUSTOM_GV = f"{CUSTOM_GROUP}/{CUSTOM_VERSION}"


def rfc3339(epoch_seconds: float) -> str:
    """metav1.Time serialises as RFC 3339 with second precision, UTC ``Z``."""
    t = _dt.datetime.fromtimestamp(epoch_seconds, tz=_dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def quantity(value: float) -> str:
    """Format a number as a Kubernetes resource.Quantity string.

    Integers stay integers ("42"); fractions become milli-units ("250m"),
    the precision the HPA works in. NaN/inf have no Quantity form: refusing
    them here keeps a broken reading from reaching the HPA as a number.
    """
    if not math.isfinite(value):
        raise ValueError(f"metric value {value!r} has no Quantity form")
    milli = round(value * 1000)
    if milli % 1000 == 0:
        return str(milli // 1000)
    return f"{milli}m"


def external_value(metric: str, labels: Mapping[str, str], timestamp: float,
                   value: float, window: int | None = None) -> dict:
    """One ExternalMetricValue."""
    item = {
        "metricName": metric,
        "metricLabels": dict(labels),
        "timestamp": rfc3339(timestamp),
        "value": quantity(value),
    }
    if window is not None:
        item["window"] = int(window)
    return item


def external_list(items: list[dict]) -> dict:
    return {"kind": "ExternalMetricValueList", "apiVersion": EXTERNAL_GV,
            "metadata": {}, "items": items}


def pod_value(namespace: str, pod: str, metric: str, timestamp: float, value: float,
              window: int | None = None, selector: dict | None = None) -> dict:
    """One custom.metrics.k8s.io/v1beta2 MetricValue describing a Pod."""
    ident: dict = {"name": metric}
    if selector:  # the query's metric selector, as upstream adapters fill it (not the pods' selector)
        ident["selector"] = selector
    item = {
        "describedObject": {"kind": "Pod", "namespace": namespace, "name": pod, "apiVersion": "/v1"},
        "metric": ident,
        "timestamp": rfc3339(timestamp),
        "value": quantity(value),
    }
    if window is not None:
        item["window"] = int(window)
    return item


def metric_value_list(items: list[dict]) -> dict:
    return {"kind": "MetricValueList", "apiVersion": CUSTOM_GV, "metadata": {}, "items": items}


_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            405: "MethodNotAllowed", 500: "InternalError", 503: "ServiceUnavailable"}


def status(code: int, message: str, reason: str | None = None, details: dict | None = None) -> dict:
    """metav1.Status for an error response."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason or _REASONS.get(code, "Unknown"), "code": code}
    if details:
        body["details"] = details
    return body
