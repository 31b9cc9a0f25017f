"""The pool's crash-storm condition (pure): since when, stable messages, an
unread pod is no recovery, a calm hold against flapping, the kubelet's
CrashLoopBackOff counted from the pod status, gone pods forgotten."""
from __future__ import annotations

from podsup import names
from podsup_operator import crash_storms as cs
from podsup_operator.metrics_api.sources.figures import PodFigures

WALL = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def storm(name, seconds=30.0, liveness=False):
    return cs.PodReading(name, True, seconds, liveness)


def calm(name):
    return cs.PodReading(name, False)


def unread(name):
    return cs.PodReading(name, None)


def test_unknown_until_a_pod_is_read_then_calm():
    w = cs.CrashWatch()
    assert w.condition() is None
    w.observe([unread("a")], 0, WALL)
    assert w.condition() is None  # nothing known: leave the condition as it is
    w.observe([calm("a"), unread("b")], 5, WALL)
    assert w.condition() == ("False", cs.REASON_CALM, cs.CALM_MESSAGE)
    empty = cs.CrashWatch()
    empty.observe([], 0, WALL)  # no pods at all: certainly no storm
    assert empty.condition()[0] == "False"


def test_a_storm_names_the_pod_since_when_and_stays_the_same_message():
    w = cs.CrashWatch()
    w.observe([storm("orders-b", seconds=90), calm("orders-a")], 0, WALL)
    status, reason, message = w.condition()
    assert (status, reason) == ("True", cs.REASON_STORM)
    assert message == ("1 pod in a crash storm (workers exit faster than --crashloop-threshold allows): "
                       "orders-b since 2027-01-15T07:58:30Z (not ready)")
    w.observe([storm("orders-b", seconds=95.3), calm("orders-a")], 5, WALL + 5.3)
    assert w.condition()[2] == message  # polls later: the same since, no rewrite
    w.observe([unread("orders-b"), calm("orders-a")], 10, WALL + 10)
    assert w.condition()[2] == message  # an unread storming pod is no recovery
    w.observe([storm("orders-b", seconds=400, liveness=True), calm("orders-a")], 15, WALL + 15)
    assert "orders-b since 2027-01-15T07:58:30Z (not ready, liveness failing: the kubelet restarts it)" \
        in w.condition()[2]


def test_a_storm_ends_only_after_the_calm_hold():
    w = cs.CrashWatch(hold=120)
    w.observe([storm("a")], 0, WALL)
    w.observe([calm("a")], 10, WALL + 10)  # e.g. restarted by the kubelet: calm for now
    assert w.condition()[0] == "True"
    w.observe([calm("a")], 129, WALL + 129)
    assert w.condition()[0] == "True"
    w.observe([storm("a", seconds=1)], 130, WALL + 130)  # storms again: the same episode, the first since
    assert "a since 2027-01-15T07:59:30Z" in w.condition()[2]
    w.observe([calm("a")], 200, WALL + 200)
    w.observe([calm("a")], 320, WALL + 320)
    assert w.condition() == ("False", cs.REASON_CALM, cs.CALM_MESSAGE)


def test_a_gone_pod_is_forgotten_at_once():
    w = cs.CrashWatch()
    w.observe([storm("a"), calm("b")], 0, WALL)
    w.observe([calm("b")], 1, WALL + 1)
    assert w.condition()[0] == "False"


def test_many_pods_are_counted_and_the_first_few_named():
    w = cs.CrashWatch()
    w.observe([storm(f"p{i}", seconds=100 - i) for i in range(7)], 0, WALL)
    message = w.condition()[2]
    assert message.startswith("7 pods in a crash storm")
    assert "p0 since" in message and "p4 since" in message and "p5" not in message
    assert message.endswith("; and 2 more")


def pod(name, waiting=None, container="worker", deleting=False):
    p = {"metadata": {"name": name},
         "spec": {"containers": [{"name": "sidecar"},
                                 {"name": container, "ports": [{"name": names.METRICS_PORT_NAME,
                                                                "containerPort": 9090}]}]},
         "status": {"containerStatuses": [{"name": "sidecar", "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
                                          {"name": container, "state": {"waiting": {"reason": waiting}}
                                           if waiting else {"running": {}}}]}}
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2027-01-15T08:00:00Z"
    return p


def test_readings_from_the_pod_list_and_the_scrape():
    pods = [pod("a"), pod("b", waiting="CrashLoopBackOff"), pod("c"), pod("d", deleting=True)]
    figures = {"a": PodFigures(crash_loop=True, crash_loop_seconds=12.0, crash_loop_unhealthy=True),
               "c": None, "d": PodFigures(crash_loop=True)}
    assert cs.readings(pods, figures) == [
        cs.PodReading("a", True, 12.0, True, False),
        cs.PodReading("b", None, 0.0, False, True),  # podsup's container in backoff; a sidecar's is not counted
        cs.PodReading("c", None, 0.0, False, False),
    ]
    w = cs.CrashWatch()
    w.observe(cs.readings(pods, figures), 0, WALL)
    message = w.condition()[2]
    assert message.startswith("2 pods in a crash storm") and "b since 2027-01-15T08:00:00Z (not ready, in " \
        "CrashLoopBackOff)" in message
