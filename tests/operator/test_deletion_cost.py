"""The pod-deletion-cost planner (pure): patch only a pod whose annotation
differs from its cost, at most once per pod per interval, at most ``limit``
per pass with the largest corrections first; costs clamp to int32 and an
unparsable annotation is rewritten."""
from __future__ import annotations

from podsup_operator import deletion_cost as dc
from podsup_operator.deletion_cost import Observed, Patch, plan


def test_cost_is_busy_workers_times_100_clamped_to_int32():
    assert dc.cost(0) == 0 and dc.cost(3) == 300
    assert dc.cost(10 ** 12) == dc.INT32_MAX


def test_current_reads_what_the_replicaset_sees():
    assert dc.current(None) == 0            # absent: cost 0
    assert dc.current(" 200 ") == 200
    assert dc.current("-5") == -5
    assert dc.current("lots") is None       # unparsable: rewritten
    assert dc.current(str(2 ** 31)) is None  # out of int32


def test_only_pods_whose_cost_changed_are_patched():
    observed = [Observed("idle-no-annotation", None, 0), Observed("idle-right", "0", 0),
                Observed("busy-right", "200", 2), Observed("busy-new", None, 1), Observed("went-idle", "300", 0)]
    assert plan(observed, {}, now=100.0) == [Patch("went-idle", 0), Patch("busy-new", 100)]


def test_a_pod_is_patched_at_most_once_per_interval():
    last = {"a": 100.0}
    observed = [Observed("a", "100", 0)]
    assert plan(observed, last, now=100.0 + dc.MIN_INTERVAL - 0.1) == []
    assert plan(observed, last, now=100.0 + dc.MIN_INTERVAL) == [Patch("a", 0)]
    assert plan(observed, last, now=105.0, interval=5.0) == [Patch("a", 0)]


def test_at_most_limit_patches_per_pass_largest_corrections_first():
    observed = [Observed(f"p{i:02d}", None, i % 4) for i in range(30)] + [Observed("garbage", "x", 0)]
    patches = plan(observed, {}, now=0.0)
    assert len(patches) == dc.MAX_PATCHES
    assert patches[0] == Patch("garbage", 0)  # an unreadable annotation first
    assert [p.cost for p in patches[1:]] == [300] * 7 + [200] * 2  # the 7 busiest, then 2 of the 200s
    assert len(plan(observed, {}, now=0.0, limit=3)) == 3
    # the rest follow in the next passes: nothing is starved
    done = {p.pod for p in patches}
    rest = plan([o for o in observed if o.pod not in done], {}, now=1.0)
    assert [p.cost for p in rest] == [200] * 5 + [100] * 5


def test_the_patch_body_is_a_string_annotation():
    assert dc.body(Patch("a", 200)) == {"metadata": {"annotations": {dc.ANNOTATION: "200"}}}
