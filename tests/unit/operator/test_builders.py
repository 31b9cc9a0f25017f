"""Pure builders: every spec field that changes a child is checked here."""
from __future__ import annotations

import pytest

from podsup import names
from podsup_operator.builders import desired_children
from podsup_operator.builders.deployment import (CONTAINER_SECURITY, POD_SECURITY, PODSUP, build_deployment, queue_url)
from podsup_operator.builders.hpa import build_hpa
from podsup_operator.builders.pdb import build_pdb
from podsup_operator.builders.service import build_service

from .conftest import flag, flags, make_pool

IMAGE = "registry.example/podsup-operator:1"


def container(dep: dict) -> dict:
    return dep["spec"]["template"]["spec"]["containers"][0]


def test_worker_runs_podsup_with_the_user_command_after_double_dash():
    pool = make_pool({"command": ["php", "w.php"], "args": ["--queue", "x"], "processes": 4})
    cmd = container(build_deployment(pool, IMAGE))["command"]
    assert cmd[:2] == [f"{names.SHARED_BIN_DIR}/podsup", "run"]
    assert cmd[cmd.index("--"):] == ["--", "php", "w.php", "--queue", "x"]
    assert flag(pool, "--workers") == "4"
    assert flag(pool, "--http") == f"0.0.0.0:{names.DEFAULT_HTTP_PORT}"


@pytest.mark.parametrize("field,value,flag_name,expected", [
    ("stopSignal", "QUIT", "--stop-signal", "QUIT"),
    ("gracefulTimeoutSeconds", 90, "--graceful-timeout", "90"),
    ("drainDelaySeconds", 7, "--drain-delay", "7"),
    ("normalExitCodes", [0, 3], "--normal-exit-codes", "0,3"),
    ("backoffMaxSeconds", 20, "--backoff-max", "20"),
    ("crashloopThreshold", 5, "--crashloop-threshold", "5"),
    ("crashloopIntervalSeconds", 60, "--crashloop-interval", "60"),
    ("maxRequests", 1000, "--max-requests", "1000"),
    ("maxRequestsJitter", 50, "--max-requests-jitter", "50"),
    ("maxLifetimeSeconds", 3600, "--max-lifetime", "3600"),
    ("maxRss", "256Mi", "--max-rss", "256Mi"),
    ("heartbeatTimeoutSeconds", 30, "--heartbeat-timeout", "30"),
    ("requestTimeoutSeconds", 10, "--request-timeout", "10"),
    ("slowRequestSeconds", 2, "--slow-request", "2"),
    ("minReady", 1, "--min-ready", "1"),
    ("logFormat", "json", "--log-format", "json"),
    ("metricsPort", 9191, "--http", "0.0.0.0:9191"),
])
def test_supervisor_settings_become_podsup_run_flags(field, value, flag_name, expected):
    pool = make_pool({"supervisor": {field: value}})
    assert flag(pool, flag_name) == expected


def test_unset_supervisor_settings_give_no_flag():
    args = flags(make_pool({}))
    assert "--max-requests" not in args and "--stop-signal" not in args and "--queue" not in args


def test_metrics_port_is_named_probed_and_annotated():
    pool = make_pool({"supervisor": {"metricsPort": 9300}})
    dep = build_deployment(pool, IMAGE)
    c = container(dep)
    assert {"name": names.METRICS_PORT_NAME, "containerPort": 9300, "protocol": "TCP"} in c["ports"]
    assert c["livenessProbe"]["httpGet"] == {"path": names.HEALTHZ_PATH, "port": names.METRICS_PORT_NAME}
    assert c["readinessProbe"]["httpGet"] == {"path": names.READYZ_PATH, "port": names.METRICS_PORT_NAME}
    ann = dep["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "9300"


def test_init_container_copies_the_binary_into_the_shared_volume():
    spec = build_deployment(make_pool({}), IMAGE)["spec"]["template"]["spec"]
    init = spec["initContainers"][0]
    assert init["image"] == IMAGE
    assert init["command"] == ["cp", names.IMAGE_BINARY_PATH, PODSUP]
    assert spec["volumes"] == [{"name": "podsup-bin", "emptyDir": {}}]
    mounts = {m["mountPath"] for m in init["volumeMounts"] + spec["containers"][0]["volumeMounts"]}
    assert mounts == {names.SHARED_BIN_DIR}


def test_preload_runs_the_images_own_podsup_with_no_init_container():
    pool = make_pool({"command": ["python3"], "processes": 3, "supervisor": {"preload": "app.workers:main"}})
    dep = build_deployment(pool, IMAGE)
    pod_spec = dep["spec"]["template"]["spec"]
    c = container(dep)
    assert c["command"][:4] == ["python3", "-m", "podsup", "run"] and "--" not in c["command"]
    assert c["command"][c["command"].index("--preload") + 1] == "app.workers:main"
    assert c["command"][c["command"].index("--workers") + 1] == "3"
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["python3", "-m", "podsup", "drain", "--wait"]
    assert "initContainers" not in pod_spec and "volumes" not in pod_spec and "volumeMounts" not in c


def test_prestop_drains_and_grace_period_covers_drain_and_graceful_timeout():
    pool = make_pool({"supervisor": {"drainDelaySeconds": 12, "gracefulTimeoutSeconds": 40}})
    dep = build_deployment(pool, IMAGE)
    assert container(dep)["lifecycle"]["preStop"]["exec"]["command"] == [PODSUP, "drain", "--wait"]
    assert dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 12 + 40


def test_replicas_applied_only_without_autoscaling():
    assert build_deployment(make_pool({"replicas": 4}), IMAGE)["spec"]["replicas"] == 4
    auto = make_pool({"replicas": 4, "autoscaling": {"enabled": True, "maxReplicas": 5,
                                                     "targets": {"busyWorkersPercent": 50}}})
    assert "replicas" not in build_deployment(auto, IMAGE)["spec"]


def test_labels_selector_and_owner_reference():
    dep = build_deployment(make_pool({"pod": {"labels": {"team": "a", names.POOL_LABEL: "hijack"}}}), IMAGE)
    assert dep["spec"]["selector"] == {"matchLabels": {names.POOL_LABEL: "jobs"}}
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels[names.POOL_LABEL] == "jobs" and labels["team"] == "a"
    assert labels["app.kubernetes.io/instance"] == "jobs"
    assert labels["app.kubernetes.io/managed-by"] == names.FIELD_MANAGER
    assert {"app.kubernetes.io/name", "app.kubernetes.io/component"} <= set(labels)
    assert dep["metadata"]["namespace"] == "prod"
    assert dep["metadata"]["ownerReferences"] == [{
        "apiVersion": "podsup.io/v1alpha1", "kind": "WorkerPool", "name": "jobs", "uid": "u-1",
        "controller": True, "blockOwnerDeletion": True}]


def test_no_owner_reference_without_uid():
    assert "ownerReferences" not in build_deployment(make_pool({}, uid=None), IMAGE)["metadata"]


def test_container_fields_pass_through():
    env = [{"name": "A", "value": "1"}]
    env_from = [{"configMapRef": {"name": "cfg"}}]
    resources = {"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}}
    csc = {"runAsNonRoot": True}
    c = container(build_deployment(make_pool({
        "imagePullPolicy": "Always", "workingDir": "/app", "env": env, "envFrom": env_from,
        "resources": resources, "pod": {"containerSecurityContext": csc}}), IMAGE))
    assert c["imagePullPolicy"] == "Always" and c["workingDir"] == "/app"
    assert c["env"] == env and c["envFrom"] == env_from and c["resources"] == resources
    assert c["securityContext"] == {**CONTAINER_SECURITY, **csc}  # the pool's fields over the restricted defaults


def test_pod_overrides_pass_through():
    pod = {"nodeSelector": {"disk": "ssd"}, "tolerations": [{"key": "k", "operator": "Exists"}],
           "affinity": {"nodeAffinity": {}}, "serviceAccountName": "sa", "imagePullSecrets": [{"name": "reg"}],
           "securityContext": {"fsGroup": 2000}, "priorityClassName": "high", "annotations": {"a": "b"}}
    tpl = build_deployment(make_pool({"pod": pod}), IMAGE)["spec"]["template"]
    for field in ("nodeSelector", "tolerations", "affinity", "serviceAccountName", "imagePullSecrets",
                  "priorityClassName"):
        assert tpl["spec"][field] == pod[field]
    assert tpl["spec"]["securityContext"] == {**POD_SECURITY, **pod["securityContext"]}
    assert tpl["metadata"]["annotations"]["a"] == "b"


def test_extra_volumes_and_mounts_follow_the_podsup_ones():
    volume = {"name": "worker", "configMap": {"name": "report-worker"}}
    mount = {"name": "worker", "mountPath": "/workers"}
    spec = build_deployment(make_pool({"volumeMounts": [mount], "pod": {"volumes": [volume]}}),
                            IMAGE)["spec"]["template"]["spec"]
    assert spec["volumes"] == [{"name": "podsup-bin", "emptyDir": {}}, volume]
    assert spec["containers"][0]["volumeMounts"][1:] == [mount]


def test_literal_queue_url_gets_the_list_or_queue_name():
    pool = make_pool({"queue": {"type": "redis", "name": "jobs", "url": "redis://r:6379/0",
                                "pollIntervalSeconds": 2.5}})
    assert flag(pool, "--queue") == "redis://r:6379/0?list=jobs"
    assert flag(pool, "--queue-interval") == "2.5"
    assert queue_url({"type": "amqp", "name": "q", "url": "amqp://mq/%2F?heartbeat=5"}) == \
        "amqp://mq/%2F?heartbeat=5&queue=q"
    assert queue_url({"type": "redis", "name": "q", "url": "redis://r/0?list=other"}) == "redis://r/0?list=other"


def test_secret_queue_url_is_env_from_secret_never_a_flag():
    pool = make_pool({"queue": {"type": "amqp", "name": "q", "urlSecretRef": {"name": "mq", "key": "url"}}})
    c = container(build_deployment(pool, IMAGE))
    assert "--queue" not in flags(pool)
    assert {"name": "PODSUP_QUEUE", "valueFrom": {"secretKeyRef": {"name": "mq", "key": "url"}}} in c["env"]


def test_service_exposes_declared_ports_and_metrics_port():
    svc = build_service(make_pool({"ports": [
        {"name": "http", "containerPort": 8080, "servicePort": 80},
        {"name": "dns", "containerPort": 5353, "protocol": "UDP"}]}))
    assert svc["spec"]["selector"] == {names.POOL_LABEL: "jobs"}
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
        {"name": "dns", "port": 5353, "targetPort": "dns", "protocol": "UDP"},
        {"name": names.METRICS_PORT_NAME, "port": names.DEFAULT_HTTP_PORT,
         "targetPort": names.METRICS_PORT_NAME, "protocol": "TCP"},
    ]


def test_hpa_absent_without_autoscaling():
    assert build_hpa(make_pool({})) is None
    assert build_hpa(make_pool({"autoscaling": {"enabled": False, "maxReplicas": 3}})) is None


def test_hpa_metrics_match_podsup_names_and_types():
    pool = make_pool({"queue": {"type": "redis", "name": "jobs", "url": "redis://r/0"},
                      "resources": {"requests": {"cpu": "1"}},
                      "autoscaling": {"enabled": True, "minReplicas": 0, "maxReplicas": 9,
                                      "targets": {"queueDepthPerReplica": 20, "requestsPerSecondPerReplica": 2.5,
                                                  "busyWorkersPercent": 70, "cpuPercent": 80},
                                      "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}})
    hpa = build_hpa(pool)
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "jobs"}
    assert spec["minReplicas"] == 1 and spec["maxReplicas"] == 9  # scale-to-zero is not the HPA's job
    assert spec["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 60}}
    external, rps, busy, cpu = spec["metrics"]
    assert external == {"type": "External", "external": {
        "metric": {"name": names.METRIC_QUEUE_DEPTH,
                   "selector": {"matchLabels": {names.EXTERNAL_SELECTOR_LABEL: "jobs"}}},
        "target": {"type": "AverageValue", "averageValue": "20"}}}
    assert rps["pods"] == {"metric": {"name": names.METRIC_REQUESTS_PER_SECOND},
                           "target": {"type": "AverageValue", "averageValue": "2500m"}}
    assert busy["pods"] == {"metric": {"name": names.METRIC_BUSY_RATIO},
                            "target": {"type": "AverageValue", "averageValue": "700m"}}
    assert cpu == {"type": "Resource", "resource": {"name": "cpu",
                                                     "target": {"type": "Utilization", "averageUtilization": 80}}}
    assert all(m["type"] != "Pods" or m["pods"]["metric"]["name"] != names.METRIC_QUEUE_DEPTH
               for m in spec["metrics"]), "a global backlog must never be a Pods metric"


def test_hpa_min_replicas_kept_when_positive():
    pool = make_pool({"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 9,
                                      "targets": {"busyWorkersPercent": 100}}})
    hpa = build_hpa(pool)
    assert hpa["spec"]["minReplicas"] == 3
    assert hpa["spec"]["metrics"][0]["pods"]["target"]["averageValue"] == "1"


@pytest.mark.parametrize("disruption", [{"minAvailable": 2}, {"maxUnavailable": "25%"}])
def test_pdb_from_disruption(disruption):
    pdb = build_pdb(make_pool({"disruption": disruption}))
    assert pdb["spec"] == {"selector": {"matchLabels": {names.POOL_LABEL: "jobs"}}, **disruption}
    assert build_pdb(make_pool({})) is None


def test_desired_children_lists_every_kind():
    children = desired_children(make_pool({}), IMAGE)
    assert [k for k, v in children.items() if v is not None] == [("apps/v1", "Deployment"), ("v1", "Service")]
    assert set(children) == {("apps/v1", "Deployment"), ("v1", "Service"),
                             ("autoscaling/v2", "HorizontalPodAutoscaler"), ("policy/v1", "PodDisruptionBudget")}
