"""``podsup-operator status``'s table and JSON (pure): the header, a row per
pod (an unread pod says why, a not-ready pod is listed unscraped), the
container's last exit, and the Summary row's sums."""
from __future__ import annotations

from podsup_operator.metrics_api.sources.figures import PodFigures
from podsup_operator.pool_view import PodRow, as_json, last_exit, pool_state, render, row

POOL = {"metadata": {"name": "orders", "namespace": "shop"},
        "status": {"replicas": 3, "readyReplicas": 2, "queueDepth": 42,
                   "conditions": [{"type": "Ready", "status": "True", "reason": "AllReplicasReady"}]}}


def pod(name, ready=True, node="node-a", last=None):
    p = {"metadata": {"name": name}, "spec": {"nodeName": node},
         "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    if last:
        p["status"]["containerStatuses"] = [{"name": "worker", "lastState": {"terminated": last}}]
    return p


def rows():
    a = PodFigures(desired=4, running=4, busy=3, idle=1, requests_per_second=12.5, rss_bytes=3 * 2 ** 20,
                   restarts=2)
    b = PodFigures(desired=4, running=3, busy=1, idle=2, requests_per_second=0.25, rss_bytes=2 ** 20)
    return [row(pod("orders-a", last={"reason": "OOMKilled", "exitCode": 137}), a, None),
            row(pod("orders-b"), b, None),
            row(pod("orders-c"), None, "HTTP 503 Service Unavailable"),
            row(pod("orders-d", ready=False, node=""), None, None)]


def test_the_table_has_a_header_a_row_per_pod_and_a_summary():
    text = render(POOL, rows())
    lines = text.splitlines()
    assert lines[0] == "Pool: shop/orders   State: Ready"
    assert lines[1] == "Replicas: 2/3 ready   Workers: 7/8   Busy: 4 (57%)   RPS: 12.75   Queue: 42"
    header = lines[3].split()
    assert header[:4] == ["POD", "NODE", "PHASE", "WORKERS"] and "RSS" in header and header[-2:] == ["LAST", "EXIT"]
    a = lines[4].split()
    assert a == ["orders-a", "node-a", "Running/ready", "4/4", "3", "12.5", "3.0Mi", "2", "OOMKilled", "(137)"]
    assert lines[5].split()[:7] == ["orders-b", "node-a", "Running/ready", "3/4", "1", "0.25", "1.0Mi"]
    assert lines[6].split()[:4] == ["orders-c", "node-a", "Running/ready", "-"]
    assert lines[7].split()[:3] == ["orders-d", "-", "Running/not"]
    assert lines[8].split() == ["Summary", "3/4", "ready", "7/8", "4", "12.75", "4.0Mi", "2"]
    assert "orders-c: HTTP 503 Service Unavailable" in text


def test_json_carries_the_same_figures():
    data = as_json(POOL, rows())
    assert data["pool"] == "orders" and data["state"] == "Ready" and data["queueDepth"] == 42
    assert data["summary"]["busy"] == 4 and data["summary"]["running"] == 7 and data["summary"]["read"] == 2
    a = data["pods"][0]
    assert a["workers"] == {"desired": 4, "running": 4, "busy": 3, "idle": 1} and a["lastExit"] == "OOMKilled (137)"
    assert data["pods"][2]["error"] == "HTTP 503 Service Unavailable" and "workers" not in data["pods"][2]


def test_state_and_last_exit():
    assert pool_state({"status": {"conditions": [{"type": "ScaledToZero", "status": "True"}]}}) == "ScaledToZero"
    assert pool_state({}) == "Unknown"
    assert pool_state({"status": {"conditions": [{"type": "Ready", "status": "False",
                                                  "reason": "ReplicasNotReady"}]}}) == "NotReady (ReplicasNotReady)"
    assert last_exit(pod("x")) == ""
    assert isinstance(row(pod("x"), None, None), PodRow)
