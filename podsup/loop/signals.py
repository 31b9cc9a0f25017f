"""Signal dispatch: what each signal to podsup means, decided in the loop thread.

The handler (:meth:`SignalDispatch.record_signal`) only records the signal;
the interpreter writes it to the loop's self-pipe (``signal.set_wakeup_fd``),
the loop wakes and calls :meth:`SignalDispatch._dispatch_signal`, which turns
it into the same drain / fast stop / reload / scale the control socket asks
for (podsup.loop.execute). Also the PID-1 duties: stray signals caught and
logged, the child sub-reaper flag when podsup is not PID 1.
"""
from __future__ import annotations

import collections
import ctypes
import os
import signal
from typing import Any

from podsup.core import policy
from podsup.loop.state import LoopState

PR_SET_CHILD_SUBREAPER = 36

#: Signals with a meaning; every other catchable signal whose default would
#: kill podsup is caught and logged instead (PID-1 duty: stray signals must
#: not take the pod down). USR1/USR2 are forwarded to every worker group.
HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTTIN,
           signal.SIGTTOU, signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2)
FORWARDED = (signal.SIGUSR1, signal.SIGUSR2)
IGNORED = tuple(s for s in (getattr(signal, n, None) for n in (
    "SIGALRM", "SIGVTALRM", "SIGPROF", "SIGPOLL", "SIGPWR", "SIGXCPU", "SIGXFSZ", "SIGSTKFLT",
    # sent by someone else, these would kill podsup and orphan its workers (a
    # real fault of podsup's own raises SIGSEGV/SIGBUS/SIGILL/SIGFPE, left as is)
    "SIGSYS", "SIGTRAP", "SIGABRT"))
    if s is not None) + tuple(range(signal.SIGRTMIN, signal.SIGRTMAX + 1))


class SignalDispatch(LoopState):
    """Mixed into the Arbiter; the loop state it shares is declared in podsup.loop.state."""

    def _init_signals(self) -> None:
        self._signals: collections.deque[int] = collections.deque()
        #: SIGTERMs received: the second one makes a graceful stop fast (a
        #: drain asked for over the control socket is not a SIGTERM)
        self.sigterms = 0

    def _install_signals(self) -> None:
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in HANDLED + IGNORED:
            signal.signal(sig, self.record_signal)
        # a mask inherited from the parent (a runner, a shell script) would make
        # podsup deaf to TERM or CHLD: a handler only runs for an unblocked signal
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED + IGNORED)

    def record_signal(self, signum: int, _frame: Any = None) -> None:
        """Signal handler: record only; the loop acts (the fd write is done by
        the interpreter's wakeup fd). ``podsup run`` installs it for SIGTERM
        before the loop's own handlers exist too: the first iteration acts."""
        self._signals.append(signum)

    def _dispatch_signal(self, sig: int) -> None:
        name = policy.signal_name(sig)
        if sig == signal.SIGCHLD:
            return  # the loop reaps on every iteration
        if sig == signal.SIGTERM:
            if self.stopping or self.sigterms:
                self._fast_stop("second SIGTERM")
            elif self.draining:  # preStop's `podsup drain`, then the kubelet's SIGTERM: go on draining
                self.sigterms += 1
                self.log.info("SIGTERM while draining: the graceful stop goes on", why=self.drain_why)
            else:
                self.sigterms += 1
                self._drain(name)
        elif sig in (signal.SIGINT, signal.SIGQUIT):
            self._fast_stop(name)
        elif self.draining or self.stopping:
            self.log.info("signal ignored while stopping", signal=name)
        elif sig == signal.SIGHUP:
            self._reload()
        elif sig in (signal.SIGTTIN, signal.SIGTTOU) and self.bounds is not None:
            self.log.warning(f"{name} ignored in dynamic mode: the pool sizes itself within its bounds",
                             min_workers=self.bounds.minimum, max_workers=self.bounds.maximum,
                             workers=self.desired)
        elif sig == signal.SIGTTIN:
            try:
                self._scale(self.desired + 1)
            except ValueError as exc:
                self.log.warning("SIGTTIN ignored: at the maximum", workers=self.desired, why=str(exc))
        elif sig == signal.SIGTTOU:
            if self.desired > 0:
                self._scale(self.desired - 1)
        elif sig in FORWARDED:
            for worker in self.workers.values():
                self.system.killpg(worker.pid, sig)
            self.log.info("signal forwarded to workers", signal=name, workers=len(self.workers))
        else:
            self.log.info("signal ignored", signal=name)

    def _become_subreaper(self) -> None:
        """Adopt orphans of our workers when we are not PID 1 (tini -s)."""
        if os.getpid() == 1:
            return
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        except (OSError, AttributeError) as exc:
            self.log.warning("cannot become child sub-reaper; orphans of workers will not be reaped",
                             error=str(exc))
