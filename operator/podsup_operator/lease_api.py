"""The Lease's API calls behind :class:`..leader_election.LeaseStore`.

Raw JSON (no model (de)serialisation of MicroTime), a request timeout on
every call (a hung call must fail before the renew deadline, not after),
and the resourceVersion read sent back on every replace, so a concurrent
writer gets a 409 instead of overwriting.
"""
from __future__ import annotations

import json
from typing import Any

from .leader_election import LeaseRecord


class LeaseAPI:
    def __init__(self, client: Any, namespace: str, name: str, timeout: float):
        import kubernetes

        self.api = kubernetes.client.CoordinationV1Api(client)
        self.ApiException = kubernetes.client.exceptions.ApiException
        self.namespace, self.name, self.timeout = namespace, name, timeout

    def get(self) -> LeaseRecord | None:
        try:
            resp = self.api.read_namespaced_lease(self.name, self.namespace, _preload_content=False,
                                                  _request_timeout=self.timeout)
        except self.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        lease = json.loads(resp.data)
        spec = lease.get("spec") or {}
        return LeaseRecord(holder=spec.get("holderIdentity") or "",
                           duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
                           acquire_time=spec.get("acquireTime"), renew_time=spec.get("renewTime"),
                           transitions=int(spec.get("leaseTransitions") or 0),
                           resource_version=lease["metadata"].get("resourceVersion"))

    def _body(self, record: LeaseRecord) -> dict:
        meta: dict = {"name": self.name, "namespace": self.namespace}
        if record.resource_version:
            meta["resourceVersion"] = record.resource_version
        spec = {"holderIdentity": record.holder, "leaseDurationSeconds": record.duration_seconds,
                "acquireTime": record.acquire_time, "renewTime": record.renew_time,
                "leaseTransitions": record.transitions}
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}

    def create(self, record: LeaseRecord) -> bool:
        try:
            self.api.create_namespaced_lease(self.namespace, self._body(record), _preload_content=False,
                                             _request_timeout=self.timeout)
        except self.ApiException as exc:
            if exc.status == 409:  # another candidate created it first
                return False
            raise
        return True

    def update(self, record: LeaseRecord) -> bool:
        try:
            self.api.replace_namespaced_lease(self.name, self.namespace, self._body(record),
                                              _preload_content=False, _request_timeout=self.timeout)
        except self.ApiException as exc:
            if exc.status == 409:  # changed since we read it
                return False
            raise
        return True
