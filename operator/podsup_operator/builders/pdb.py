"""WorkerPool → PodDisruptionBudget (policy/v1) from spec.disruption, or a
default one for a pool that may run more than one pod."""
from __future__ import annotations

from .. import crd
from .common import autoscaling_enabled, metadata, section, selector_labels, spec

#: The budget of a pool that says nothing: node drains take its pods one at a
#: time (never all of a pool at once), and never block on it.
DEFAULT_MAX_UNAVAILABLE = 1


def may_run_several(pool: dict) -> bool:
    """More than one replica now (fixed size) or possibly (autoscaled up to maxReplicas > 1)."""
    if autoscaling_enabled(pool):
        return section(pool, "autoscaling").get("maxReplicas", 1) > 1
    return spec(pool).get("replicas", crd.DEFAULT_REPLICAS) > 1


def build_pdb(pool: dict) -> dict | None:
    """The PDB: spec.disruption's; else maxUnavailable 1 for a pool that may
    run more than one pod; else None (a single pod has nothing to spread)."""
    disruption = section(pool, "disruption")
    pdb_spec: dict = {"selector": {"matchLabels": selector_labels(pool)}}
    for field in ("minAvailable", "maxUnavailable"):
        if field in disruption:
            pdb_spec[field] = disruption[field]
    if len(pdb_spec) == 1:
        if not may_run_several(pool):
            return None
        pdb_spec["maxUnavailable"] = DEFAULT_MAX_UNAVAILABLE
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": metadata(pool), "spec": pdb_spec}
