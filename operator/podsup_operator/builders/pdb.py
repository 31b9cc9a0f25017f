"""WorkerPool → PodDisruptionBudget (policy/v1) from spec.disruption."""
from __future__ import annotations

from .common import metadata, section, selector_labels


def build_pdb(pool: dict) -> dict | None:
    """The PDB, or None when spec.disruption is absent."""
    disruption = section(pool, "disruption")
    pdb_spec: dict = {"selector": {"matchLabels": selector_labels(pool)}}
    for field in ("minAvailable", "maxUnavailable"):
        if field in disruption:
            pdb_spec[field] = disruption[field]
    if len(pdb_spec) == 1:
        return None
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": metadata(pool), "spec": pdb_spec}
