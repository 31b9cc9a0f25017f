"""From a request path to what is asked and what must be authorized (pure).

Mirrors the kube-apiserver's RequestInfo so our SubjectAccessReviews ask what
RBAC roles grant (the HPA controller's ClusterRole allows ``list`` on
``external.metrics.k8s.io`` ``*`` and ``get``/``list`` on
``custom.metrics.k8s.io`` ``*``):

- ``/apis/external.metrics.k8s.io/v1beta1/namespaces/NS/METRIC`` →
  resource METRIC, verb ``list``;
- ``/apis/custom.metrics.k8s.io/v1beta2/namespaces/NS/pods/NAME/METRIC`` →
  resource ``pods``, subresource METRIC, name NAME (``*`` = all), verb ``get``;
- anything else is a non-resource URL (discovery, openapi) with verb ``get``.

Path segments are percent-decoded one by one: the HPA asks for
``pods/%2A/<metric>``, and a ``%2F`` must not split a segment.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from .types import CUSTOM_GROUP, EXTERNAL_GROUP

#: Served without authentication or authorization, like the generic
#: apiserver's ``--authorization-always-allow-paths`` default.
ALWAYS_ALLOW = frozenset({"/healthz", "/livez", "/readyz"})

_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update",
          "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class RequestInfo:
    path: str
    verb: str
    segments: tuple[str, ...]
    is_resource: bool = False
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    def sar_attributes(self) -> dict:
        """``spec.resourceAttributes`` or ``spec.nonResourceAttributes`` of a SAR."""
        if not self.is_resource:
            return {"nonResourceAttributes": {"path": self.path, "verb": self.verb}}
        attrs = {"group": self.group, "version": self.version, "resource": self.resource,
                 "verb": self.verb, "namespace": self.namespace}
        if self.subresource:
            attrs["subresource"] = self.subresource
        if self.name:
            attrs["name"] = self.name
        return {"resourceAttributes": attrs}


def parse(raw_path: str, method: str) -> RequestInfo:
    """Describe a request by its raw (still percent-encoded) path."""
    raw_path = raw_path.split("?", 1)[0]
    segments = tuple(unquote(s) for s in raw_path.split("/") if s)
    path = "/" + "/".join(segments)
    verb = _VERBS.get(method.upper(), method.lower())
    info = RequestInfo(path=path, verb=verb, segments=segments)
    if len(segments) < 5 or segments[0] != "apis" or segments[1] not in (EXTERNAL_GROUP, CUSTOM_GROUP):
        return info
    group, version, rest = segments[1], segments[2], segments[3:]
    if rest[0] != "namespaces" or len(rest) < 3:
        # Cluster-scoped metric paths (e.g. nodes/*/m) are resources we do not
        # serve; authorize them as such so the 404 is only given to the allowed.
        return RequestInfo(path=path, verb=verb, segments=segments, is_resource=True,
                           group=group, version=version, resource=rest[0],
                           name=rest[1] if len(rest) > 1 else "",
                           subresource="/".join(rest[2:]))
    namespace, rest = rest[1], rest[2:]
    if len(rest) == 1:
        list_verb = "list" if verb == "get" else verb
        return RequestInfo(path=path, verb=list_verb, segments=segments, is_resource=True,
                           group=group, version=version, namespace=namespace, resource=rest[0])
    return RequestInfo(path=path, verb=verb, segments=segments, is_resource=True,
                       group=group, version=version, namespace=namespace, resource=rest[0],
                       name=rest[1], subresource="/".join(rest[2:]))
