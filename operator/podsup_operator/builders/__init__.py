"""Pure desired-state builders: WorkerPool dict → child manifests as dicts.

``desired_children`` is what both the reconcile and ``render`` use; each kind
has its own module. ``MANAGED_KINDS`` lists every kind the operator may own so
the reconcile can delete a child the spec no longer asks for (an HPA after
autoscaling is switched off).
"""
from __future__ import annotations

from .deployment import build_deployment
from .hpa import build_hpa
from .pdb import build_pdb
from .service import build_service

#: (apiVersion, kind) of every child, in apply order.
MANAGED_KINDS = [
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
]


def desired_children(pool: dict, operator_image: str) -> dict[tuple[str, str], dict | None]:
    """Every managed kind → its desired manifest, or None if it must not exist."""
    return {
        ("apps/v1", "Deployment"): build_deployment(pool, operator_image),
        ("v1", "Service"): build_service(pool),
        ("autoscaling/v2", "HorizontalPodAutoscaler"): build_hpa(pool),
        ("policy/v1", "PodDisruptionBudget"): build_pdb(pool),
    }


__all__ = ["MANAGED_KINDS", "desired_children", "build_deployment", "build_service", "build_hpa", "build_pdb"]
