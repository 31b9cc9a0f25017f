"""Scale to zero and back: an explicit state machine over plain data (pure).

Why the operator does this and not the HPA: the HPA's minReplicas is at least
1 (we give it max(1, minReplicas)), and an HPA whose target has 0 replicas
does nothing at all. So, like KEDA, the operator moves the Deployment between
0 and 1 through its scale subresource, and only there: at 1+ replicas the HPA
owns the count and the operator never writes it (they never fight).

Phases (``Phase``):

- ``Disabled``: scale-to-zero is off (autoscaling off, minReplicas > 0, or no
  queue to watch). Leaving zero when it gets disabled restores 1 replica,
  or the pool would stay at 0 forever.
- ``Active``: replicas >= 1 and work exists (messages waiting or busy workers).
- ``Idle``: replicas >= 1, no messages and no busy workers since
  ``idle_since``; after ``idleCooldownSeconds`` of that → ``ScaledToZero``
  with scale to 0.
- ``ScaledToZero``: 0 replicas; the first message → ``Active`` with scale to 1.

Unknown inputs (broker unreachable, busy ratio unreadable) never move the
pool toward zero: the phase holds. Someone else changing replicas (a user's
``kubectl scale``) is followed, not fought.

:func:`step` is the only transition function; it returns the new state, the
replica count to set (or None), the ``ScaledToZero`` condition and an Event
for phase changes, which the kopf wiring applies. Time is passed in.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

CONDITION_TYPE = "ScaledToZero"


class Phase(enum.Enum):
    DISABLED = "Disabled"
    ACTIVE = "Active"
    IDLE = "Idle"
    SCALED_TO_ZERO = "ScaledToZero"


@dataclass(frozen=True)
class State:
    phase: Phase = Phase.DISABLED
    idle_since: float | None = None


@dataclass(frozen=True)
class Observation:
    now: float
    enabled: bool              #: autoscaling on, minReplicas 0, a queue configured
    cooldown: float            #: idleCooldownSeconds
    replicas: int | None       #: Deployment spec.replicas; None = no Deployment yet
    queue_depth: float | None  #: None = unknown (broker error)
    busy: bool | None = False  #: any busy worker; None = unknown


@dataclass(frozen=True)
class Condition:
    status: str  # "True" / "False"
    reason: str
    message: str


@dataclass(frozen=True)
class Event:
    type: str  # "Normal" / "Warning"
    reason: str
    message: str


@dataclass(frozen=True)
class Transition:
    state: State
    scale_to: int | None = None
    condition: Condition | None = None
    event: Event | None = None


def _condition(state: State, obs: Observation) -> Condition:
    match state.phase:
        case Phase.SCALED_TO_ZERO:
            return Condition("True", "IdleCooldownElapsed",
                             f"no messages and no busy workers for {obs.cooldown:g}s; the first message "
                             f"scales the pool back to 1 replica")
        case Phase.IDLE:
            return Condition("False", "IdleCooldown",
                             f"no messages and no busy workers; scaling to zero after {obs.cooldown:g}s idle")
        case Phase.ACTIVE:
            return Condition("False", "Active", "work waiting or in progress; the HPA owns the replica count")
        case _:
            return Condition("False", "Disabled",
                             "scale to zero needs autoscaling.enabled, autoscaling.minReplicas: 0 and spec.queue")


def _to(state: State, obs: Observation, scale_to: int | None = None,
        event: Event | None = None) -> Transition:
    return Transition(state, scale_to, _condition(state, obs), event)


def step(state: State, obs: Observation) -> Transition:
    """Decide the next state from the current one and what was observed."""
    if not obs.enabled:
        new = State(Phase.DISABLED)
        if state.phase is Phase.SCALED_TO_ZERO and obs.replicas == 0:
            return _to(new, obs, 1, Event("Normal", "ScaleToZeroDisabled",
                                                 "scale to zero turned off while at 0 replicas: scaled to 1"))
        return _to(new, obs)
    if obs.replicas is None:
        return _to(state, obs)  # no Deployment yet: nothing to decide

    if state.phase is Phase.DISABLED:
        # Entering: start from what the cluster shows.
        state = State(Phase.SCALED_TO_ZERO) if obs.replicas == 0 else State(Phase.ACTIVE)

    if obs.queue_depth is None:
        return _to(state, obs)  # broker unknown: hold, never scale on a guess
    has_messages = obs.queue_depth > 0

    if state.phase is Phase.SCALED_TO_ZERO:
        if obs.replicas > 0:
            return _to(State(Phase.ACTIVE), obs)  # someone scaled it up: follow
        if has_messages:
            return _to(State(Phase.ACTIVE), obs, 1,
                       Event("Normal", "ScaledFromZero",
                             f"{obs.queue_depth:g} message(s) waiting: scaled from 0 to 1 replica"))
        return _to(state, obs)

    # Active or Idle: replicas > 0 is the HPA's business, replicas == 0 is someone else's.
    if obs.replicas == 0:
        return _to(State(Phase.SCALED_TO_ZERO), obs)
    if has_messages or obs.busy:
        return _to(State(Phase.ACTIVE), obs)
    if obs.busy is None:
        return _to(state, obs)  # busy workers unknown: hold
    idle_since = state.idle_since if state.phase is Phase.IDLE else obs.now
    if obs.now - idle_since >= obs.cooldown:
        return _to(State(Phase.SCALED_TO_ZERO), obs, 0,
                   Event("Normal", "ScaledToZero",
                         f"no messages and no busy workers for {obs.cooldown:g}s: scaled to 0 replicas"))
    return _to(State(Phase.IDLE, idle_since), obs)


def enabled(spec: dict) -> bool:
    """Scale to zero applies to this WorkerPool spec."""
    auto = spec.get("autoscaling") or {}
    return bool(auto.get("enabled")) and auto.get("minReplicas", 1) == 0 and bool(spec.get("queue"))


def stranded_at_zero(spec: dict, replicas: int | None) -> int | None:
    """The replica count a Deployment left at 0 must get back, or None.

    The HPA does nothing for a target at 0 replicas, so while autoscaling is
    on and scale to zero does not apply (the queue was removed, minReplicas
    raised — perhaps while the operator was down, so no poller remembers the
    pool was at zero — or autoscaling turned on over ``replicas: 0``), a
    Deployment at 0 would stay there for ever. Level-based: decided from the
    spec and the live count alone. To park a pool at 0 on purpose, turn
    autoscaling off and set ``replicas: 0``.
    """
    auto = spec.get("autoscaling") or {}
    if not auto.get("enabled") or enabled(spec) or replicas != 0:
        return None
    return max(1, int(auto.get("minReplicas", 1) or 1))


def cooldown(spec: dict, default: float = 300.0) -> float:
    auto = spec.get("autoscaling") or {}
    value = auto.get("idleCooldownSeconds")
    return float(default if value is None else value)
