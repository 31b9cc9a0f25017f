"""Names that podsup, the operator, the Helm chart and users all rely on.

One module so the supervisor that exports a metric, the operator that builds
the HPA reading it, the metrics API that serves it and the prometheus-adapter
rules in the chart can never drift apart. This module imports nothing: the
operator imports it without pulling in the supervisor.
"""

#: Prefix of every metric podsup exports.
METRIC_PREFIX = "podsup_"

# --- metrics the HPA reads (contract: DESIGN.md, docs/metrics.md) ---------
#: Gauge, per pod: requests (``done`` reports) per second over a rolling window.
#: Served to the HPA as a ``Pods`` metric of this name.
METRIC_REQUESTS_PER_SECOND = "podsup_requests_per_second"
#: Gauge, per pod: busy workers / running workers (0..1). ``Pods`` metric.
METRIC_BUSY_RATIO = "podsup_busy_ratio"
#: busy / --max-workers: what the HPA's busy target reads when the pool is dynamic
METRIC_POOL_SATURATION = "podsup_pool_saturation"
#: Gauge, per queue: backlog length. Served to the HPA as an ``External``
#: metric of this name with an AverageValue target (never a Pods metric: a
#: shared backlog must not be averaged over pods).
METRIC_QUEUE_DEPTH = "podsup_queue_depth"
#: Label of the External metric's selector naming the WorkerPool.
EXTERNAL_SELECTOR_LABEL = "workerpool"

# --- HTTP and control defaults --------------------------------------------
DEFAULT_HTTP_PORT = 9090
DEFAULT_HTTP = f"0.0.0.0:{DEFAULT_HTTP_PORT}"
HEALTHZ_PATH = "/healthz"
READYZ_PATH = "/readyz"
METRICS_PATH = "/metrics"
#: Name of the container port that serves /metrics, /healthz and /readyz.
METRICS_PORT_NAME = "podsup-metrics"

# --- worker environment (the worker protocol) ------------------------------
ENV_WORKER_ID = "PODSUP_WORKER_ID"
ENV_WORKERS = "PODSUP_WORKERS"
ENV_REPORT = "PODSUP_REPORT"

# --- packaging: the standalone binary ---------------------------------------
#: Where the operator image keeps the standalone podsup executable; the
#: Deployment's init container copies it from here.
IMAGE_BINARY_PATH = "/opt/podsup/bin/podsup"
#: Mount point of the shared emptyDir in the worker pod; the worker container
#: runs ``{SHARED_BIN_DIR}/podsup``.
SHARED_BIN_DIR = "/podsup/bin"

# --- Kubernetes ------------------------------------------------------------
API_GROUP = "podsup.io"
API_VERSION = "v1alpha1"
KIND = "WorkerPool"
PLURAL = "workerpools"
#: Field manager of every server-side apply the operator makes.
FIELD_MANAGER = "podsup-operator"
#: Annotation on every child: a digest of what the operator last applied, so a
#: field dropped from the spec (which the live object still holds) is noticed
#: and applied away (server-side apply removes fields its manager stops setting).
APPLIED_HASH_ANNOTATION = "podsup.io/applied-hash"
#: Label on every pod (and child object) of a WorkerPool; the Deployment's
#: selector and the metrics API's pod lookups use it. Prometheus relabels it to
#: the series label ``workerpool`` (EXTERNAL_SELECTOR_LABEL).
POOL_LABEL = "podsup.io/workerpool"

# --- the operator's own ports ----------------------------------------------
#: kopf liveness endpoint: http://0.0.0.0:OPERATOR_HEALTH_PORT/healthz
OPERATOR_HEALTH_PORT = 8080
#: the operator's own Prometheus metrics: http://0.0.0.0:OPERATOR_METRICS_PORT/metrics
OPERATOR_METRICS_PORT = 8081
#: HTTPS port of the aggregated external/custom metrics API the operator
#: serves: ``--metrics-api-port``'s default. Not 6443: out of a cluster (a
#: laptop, a CI host) that is the local kube-apiserver's port (kind, k3s,
#: kubeadm), and a taken port left the API down.
METRICS_API_PORT = 7443
#: The same port in the operator's Pod (its own network namespace, nothing
#: else listens there): the chart's ``metricsApi.port``, passed as the flag.
METRICS_API_POD_PORT = 6443
