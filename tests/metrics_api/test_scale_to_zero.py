"""The scale-to-zero state machine as pure logic, with a fake clock.
Tests are named after the transitions."""
from __future__ import annotations

from podsup_operator.scale_to_zero import Observation, Phase, State, cooldown, enabled, step, stranded_at_zero

COOL = 300.0


def obs(now=0.0, replicas=1, depth=0.0, busy=False, on=True, cool=COOL):
    return Observation(now=now, enabled=on, cooldown=cool, replicas=replicas, queue_depth=depth, busy=busy)


ACTIVE = State(Phase.ACTIVE)
ZERO = State(Phase.SCALED_TO_ZERO)


def test_active_to_idle_when_queue_empty_and_no_busy_workers():
    t = step(ACTIVE, obs(now=100))
    assert t.state == State(Phase.IDLE, 100) and t.scale_to is None and t.event is None
    assert (t.condition.status, t.condition.reason) == ("False", "IdleCooldown")


def test_idle_stays_idle_before_cooldown_with_a_stable_condition():
    t1 = step(State(Phase.IDLE, 100), obs(now=200))
    t2 = step(t1.state, obs(now=399))
    assert t2.state == State(Phase.IDLE, 100) and t2.scale_to is None
    assert t1.condition == t2.condition  # no status write per poll


def test_idle_to_scaled_to_zero_after_cooldown_scales_to_0():
    t = step(State(Phase.IDLE, 100), obs(now=400))
    assert t.state.phase is Phase.SCALED_TO_ZERO and t.scale_to == 0
    assert (t.condition.status, t.condition.reason) == ("True", "IdleCooldownElapsed")
    assert t.event.reason == "ScaledToZero"


def test_active_to_scaled_to_zero_at_once_with_zero_cooldown():
    t = step(ACTIVE, obs(now=5, cool=0))
    assert t.state.phase is Phase.SCALED_TO_ZERO and t.scale_to == 0


def test_idle_to_active_on_a_message_resets_the_cooldown():
    t = step(State(Phase.IDLE, 100), obs(now=390, depth=1))
    assert t.state == ACTIVE and t.scale_to is None
    t = step(t.state, obs(now=391))
    assert t.state == State(Phase.IDLE, 391)
    assert step(t.state, obs(now=600)).scale_to is None


def test_idle_to_active_while_workers_are_busy_on_popped_jobs():
    t = step(State(Phase.IDLE, 100), obs(now=1000, busy=True))
    assert t.state == ACTIVE and t.scale_to is None


def test_scaled_to_zero_to_active_on_first_message_scales_to_1():
    t = step(ZERO, obs(now=10, replicas=0, depth=1))
    assert t.state == ACTIVE and t.scale_to == 1
    assert t.event.reason == "ScaledFromZero" and "1 message" in t.event.message
    assert (t.condition.status, t.condition.reason) == ("False", "Active")


def test_scaled_to_zero_stays_while_queue_is_empty():
    t = step(ZERO, obs(now=10, replicas=0))
    assert t.state == ZERO and t.scale_to is None and t.event is None


def test_scaled_to_zero_to_active_when_someone_else_scales_up_without_writing():
    t = step(ZERO, obs(now=10, replicas=3, depth=0))
    assert t.state == ACTIVE and t.scale_to is None


def test_unknown_queue_depth_holds_every_phase():
    for state in (ACTIVE, State(Phase.IDLE, 0), ZERO):
        t = step(state, obs(now=10_000, replicas=0 if state == ZERO else 1, depth=None))
        assert t.state == state and t.scale_to is None


def test_unknown_busy_holds_idle_short_of_zero():
    t = step(State(Phase.IDLE, 0), obs(now=10_000, busy=None))
    assert t.state == State(Phase.IDLE, 0) and t.scale_to is None


def test_disabled_to_scaled_to_zero_when_found_at_zero_replicas():
    t = step(State(), obs(now=1, replicas=0))
    assert t.state == ZERO and t.scale_to is None
    t = step(State(), obs(now=1, replicas=0, depth=4))
    assert t.state == ACTIVE and t.scale_to == 1


def test_disabled_to_idle_when_found_running_and_empty():
    t = step(State(), obs(now=7, replicas=2))
    assert t.state == State(Phase.IDLE, 7)


def test_scaled_to_zero_to_disabled_restores_one_replica():
    t = step(ZERO, obs(now=1, replicas=0, on=False))
    assert t.state.phase is Phase.DISABLED and t.scale_to == 1
    assert t.event.reason == "ScaleToZeroDisabled"
    assert (t.condition.status, t.condition.reason) == ("False", "Disabled")


def test_active_to_disabled_never_writes_replicas():
    t = step(ACTIVE, obs(now=1, replicas=5, on=False))
    assert t.state.phase is Phase.DISABLED and t.scale_to is None


def test_idle_to_scaled_to_zero_without_writing_when_someone_else_scaled_to_0():
    t = step(State(Phase.IDLE, 0), obs(now=1, replicas=0))
    assert t.state == ZERO and t.scale_to is None


def test_no_deployment_yet_holds():
    t = step(ACTIVE, obs(now=1, replicas=None))
    assert t.state == ACTIVE and t.scale_to is None


def test_enabled_needs_autoscaling_min_zero_and_a_queue():
    queue = {"type": "redis", "name": "q", "url": "redis://r:6379/0"}
    assert enabled({"autoscaling": {"enabled": True, "minReplicas": 0, "maxReplicas": 3}, "queue": queue})
    assert not enabled({"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 3}, "queue": queue})
    assert not enabled({"autoscaling": {"enabled": False, "minReplicas": 0}, "queue": queue})
    assert not enabled({"autoscaling": {"enabled": True, "minReplicas": 0, "maxReplicas": 3}})
    assert not enabled({"autoscaling": {"enabled": True, "maxReplicas": 3}, "queue": queue})  # default min 1
    assert cooldown({"autoscaling": {"idleCooldownSeconds": 0}}) == 0
    assert cooldown({}) == 300


QUEUE = {"type": "redis", "name": "jobs", "url": "redis://r:6379/0"}


def test_stranded_at_zero_when_the_queue_was_removed():
    assert stranded_at_zero({"autoscaling": {"enabled": True, "minReplicas": 0}}, 0) == 1


def test_stranded_at_zero_when_min_replicas_was_raised_gets_the_minimum():
    spec = {"autoscaling": {"enabled": True, "minReplicas": 3}, "queue": QUEUE}
    assert stranded_at_zero(spec, 0) == 3


def test_not_stranded_while_scale_to_zero_applies():
    spec = {"autoscaling": {"enabled": True, "minReplicas": 0}, "queue": QUEUE}
    assert stranded_at_zero(spec, 0) is None


def test_not_stranded_with_autoscaling_off_or_replicas_running():
    assert stranded_at_zero({"autoscaling": {"enabled": False}, "replicas": 0}, 0) is None
    assert stranded_at_zero({"replicas": 0}, 0) is None
    assert stranded_at_zero({"autoscaling": {"enabled": True, "minReplicas": 1}}, 2) is None
    assert stranded_at_zero({"autoscaling": {"enabled": True, "minReplicas": 1}}, None) is None
