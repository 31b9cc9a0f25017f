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
#: Image of the init container that copies the podsup binary; the Helm chart
#: sets PODSUP_OPERATOR_IMAGE to the operator's own image.
DEFAULT_OPERATOR_IMAGE = "ghcr.io/podsup/podsup-operator:0.1.0"
#: Seconds between level-based resyncs of every WorkerPool (drift correction).
RESYNC_SECONDS = 60.0


def default_operator_image() -> str:
    return os.environ.get(ENV_OPERATOR_IMAGE) or DEFAULT_OPERATOR_IMAGE


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
