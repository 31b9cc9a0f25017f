"""Operator-wide settings chosen at start-up (CLI flags / environment).

Kept in one small object the handlers read, so tests and the CLI configure
the same thing and handler modules stay importable without side effects.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from podsup import names

ENV_OPERATOR_IMAGE = "PODSUP_OPERATOR_IMAGE"
#: The operator's own Pod (the chart sets them from the downward API): Events
#: about the operator itself, such as a metrics API that cannot start, go there.
ENV_POD_NAME, ENV_POD_NAMESPACE, ENV_POD_UID = "POD_NAME", "POD_NAMESPACE", "POD_UID"
#: Image of the init container that copies the podsup binary; the Helm chart
#: sets PODSUP_OPERATOR_IMAGE to the operator's own image.
DEFAULT_OPERATOR_IMAGE = "ghcr.io/podsup/podsup-operator:0.1.0"
#: Seconds between level-based resyncs of every WorkerPool (drift correction).
RESYNC_SECONDS = 60.0


def default_operator_image() -> str:
    return os.environ.get(ENV_OPERATOR_IMAGE) or DEFAULT_OPERATOR_IMAGE


def own_pod() -> dict | None:
    """The operator's Pod as an Event target, or None out of a cluster (no
    POD_NAME/POD_NAMESPACE). The uid, when given, is what ``kubectl describe
    pod`` matches Events by."""
    name, namespace = os.environ.get(ENV_POD_NAME), os.environ.get(ENV_POD_NAMESPACE)
    if not (name and namespace):
        return None
    meta = {"name": name, "namespace": namespace}
    if os.environ.get(ENV_POD_UID):
        meta["uid"] = os.environ[ENV_POD_UID]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta}


@dataclass
class OperatorConfig:
    operator_image: str = DEFAULT_OPERATOR_IMAGE
    #: Namespaces the operator serves; empty = all (used by the periodic resync).
    namespaces: list[str] = field(default_factory=list)


CONFIG = OperatorConfig(operator_image=default_operator_image())


def configure_settings(settings) -> None:  # kopf.OperatorSettings; kopf imported by the caller
    """kopf settings of the operator: progress and diff-base kept in our own
    annotations (the status schema is ours, kopf must not write into it);
    warnings and errors posted as Events (Normal events are posted explicitly)."""
    import kopf

    settings.posting.enabled = True
    settings.posting.level = logging.WARNING
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.API_GROUP, key="last-handled-configuration")
    settings.persistence.finalizer = f"{names.API_GROUP}/finalizer"
