"""scale_in.DeletionCoster at the Kube seam: a failed patch (the pod just
went away) is logged and counts as an attempt — retried after the pod's
interval, not on every poll —, pods whose scrape failed are left alone, and
pods no longer listed are forgotten."""
from __future__ import annotations

from podsup_operator import deletion_cost
from podsup_operator.metrics_api.scale_in import DeletionCoster
from podsup_operator.metrics_api.sources.figures import PodFigures
from podsup_operator.metrics_api.sources.pods import PodTarget, Scrape


class Kube:
    def __init__(self, fail=False):
        self.fail, self.calls = fail, []

    def patch_pod(self, namespace, name, body):
        self.calls.append((namespace, name, body))
        if self.fail:
            raise RuntimeError("pods \"a\" not found")


def listed(*names):
    return [{"metadata": {"name": n}} for n in names]


def scraped(name, busy=None, error=None):
    return (PodTarget("ns", name, f"http://{name}"),
            Scrape(0.0, values={}, figures=PodFigures(busy=busy)) if error is None else Scrape(0.0, error=error))


async def test_a_failed_patch_waits_for_the_interval(caplog):
    t = [100.0]
    kube = Kube(fail=True)
    coster = DeletionCoster("ns", kube, monotonic=lambda: t[0])
    await coster.run(listed("a"), [scraped("a", busy=2)])
    assert kube.calls == [("ns", "a", {"metadata": {"annotations": {deletion_cost.ANNOTATION: "200"}}})]
    assert "setting controller.kubernetes.io/pod-deletion-cost=200 failed" in caplog.text
    t[0] += 1
    await coster.run(listed("a"), [scraped("a", busy=2)])
    assert len(kube.calls) == 1
    t[0] += deletion_cost.MIN_INTERVAL
    await coster.run(listed("a"), [scraped("a", busy=2)])
    assert len(kube.calls) == 2


async def test_unread_pods_are_left_alone_and_gone_pods_forgotten():
    kube = Kube()
    coster = DeletionCoster("ns", kube, monotonic=lambda: 0.0)
    await coster.run(listed("a", "b"), [scraped("a", busy=1), scraped("b", error="timed out")])
    assert [c[1] for c in kube.calls] == ["a"] and set(coster.last) == {"a"}
    await coster.run(listed("b"), [scraped("b", error="timed out")])
    assert coster.last == {}
