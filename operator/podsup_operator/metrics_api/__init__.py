"""The aggregated metrics API the operator serves itself.

``external.metrics.k8s.io/v1beta1`` answers the HPA's External queue-depth
metric from the operator's own broker poll (known even at zero replicas);
``custom.metrics.k8s.io/v1beta2`` answers the per-pod ``Pods`` metrics from
scrapes of the pool's ready pods. So ``helm install`` + ``kubectl apply`` is
enough to autoscale: no Prometheus, no prometheus-adapter, no KEDA.

Modules, one concern each: ``types`` (the API objects, pure), ``discovery``
(APIResourceList documents), ``paths`` (URL → request, like the
kube-apiserver's RequestInfo), ``selectors`` (label selector strings),
``certs`` (serving certificates), ``auth`` (front-proxy + TokenReview),
``authz`` (cached SubjectAccessReview), ``sources`` (broker poll, pod scrape),
``provider`` (values for a request), ``server`` (aiohttp over HTTPS),
``kube`` (the real TokenReview/SAR/pod-list calls behind small seams).
"""
