"""An Arbiter on a FakeSystem, with helpers to drive it (shared by tests/unit/loop)."""
from __future__ import annotations

import io

from podsup import names
from podsup.core.config import Config
from podsup.core.states import WorkerState
from podsup.host.cgroup import OomCounter
from podsup.host.output import Log
from podsup.host.system import FakeSystem
from podsup.loop.arbiter import Arbiter


class Pool:
    """An Arbiter on a FakeSystem, with helpers to drive it."""

    def __init__(self, first_pid: int | None = None, oom_path: str | None = None,
                 extensions=(), **options) -> None:
        options.setdefault("workers", 2)
        options.setdefault("graceful_timeout", 5.0)
        self.config = Config(command=("worker",), **options)
        self.fake = FakeSystem()
        if first_pid is not None:
            self.fake.next_pid = first_pid - 1
        self.err = io.BytesIO()
        self.arb = Arbiter(self.config, extensions=extensions, system=self.fake,
                           log=Log("text", out=io.BytesIO(), err=self.err),
                           oom=OomCounter(oom_path or ""), install_signals=False)
        self.arb.start()
        self.step()

    def step(self) -> None:
        self.arb.step(0)

    def advance(self, seconds: float) -> None:
        self.fake.advance(seconds)
        self.step()

    def pid(self, slot: int) -> int:
        return self.arb.slots[slot].current.pid

    def report_path(self, slot: int) -> str:
        """PODSUP_REPORT of the slot's current worker."""
        return self.arb.slots[slot].current.report.path

    def state(self, slot: int) -> WorkerState:
        return self.arb.slots[slot].current.state

    def spawned_slots(self) -> list[str]:
        return [env[names.ENV_WORKER_ID] for _pid, _argv, env in self.fake.spawned]

    def run(self, command):
        future = self.arb.submit(command)
        self.step()
        return future

    def log(self) -> str:
        return self.err.getvalue().decode()

    def close(self) -> None:
        self.arb.close()
