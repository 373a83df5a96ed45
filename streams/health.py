"""Is the worker alive, and is it making progress? Liveness, readiness and stall detection.

Faust consumers can stop silently (faust-streaming #175, #640): the process stays up,
``/metrics`` answers, and nothing is processed. What tells a stall from a quiet topic
is whether events *wait*: a stall is events waiting on this worker's assigned
partitions while none has been processed for ``stall_seconds``.

The worker's event loop reports to :class:`WorkerHealth` (the agent after each batch,
a timer with what waits); the HTTP server reads it from its own thread, so a blocked
event loop still gets an answer: its samples simply stop coming, which counts as a stall.

Example (a clock we move by hand):

>>> now = [0.0]
>>> health = WorkerHealth(stall_seconds=60, clock=lambda: now[0])
>>> health.observe(assigned=2, waiting=5)
>>> now[0] = 61.0
>>> health.observe(assigned=2, waiting=5)
>>> print(health.readiness().reason)
stalled: 5 events wait on 2 assigned partitions and none was processed for 61 s
>>> health.processed()
>>> health.readiness().ok
True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """An answer for a probe: ``ok`` is HTTP 200, otherwise 503 with ``reason``."""

    ok: bool
    reason: str


class WorkerHealth:
    """What the worker reports about its progress, judged against ``clock``.

    Parameters
    ----------
    stall_seconds
        How long events may wait with none processed before the worker counts as
        stalled (``WorkerSettings.stall_seconds``).
    clock
        Seconds, monotonic; tests pass their own.
    """

    def __init__(self, stall_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_seconds = stall_seconds
        self.clock = clock
        self._lock = threading.Lock()  # the event loop writes, the HTTP thread reads
        self._assigned = 0
        self._waiting = 0
        self._recovering = False
        self._last_sample: float | None = None
        self._last_progress = clock()
        self._waiting_since: float | None = None
        self._crash: str | None = None

    def processed(self) -> None:
        """The agent finished a batch: progress."""
        with self._lock:
            self._last_progress = self.clock()

    def observe(self, assigned: int, waiting: int, recovering: bool = False) -> None:
        """A sample from the event loop: source partitions assigned, events waiting on
        them, and whether Faust is rebalancing or recovering tables (not a stall)."""
        now = self.clock()
        with self._lock:
            self._assigned, self._waiting, self._recovering = assigned, waiting, recovering
            self._last_sample = now
            if waiting and not recovering:
                if self._waiting_since is None:
                    self._waiting_since = now
            else:
                self._waiting_since = None

    def agent_crashed(self, error: BaseException) -> None:
        """The agent raised: nothing more will be processed by this process."""
        with self._lock:
            self._crash = type(error).__name__

    @property
    def consumer_lag(self) -> int:
        """Events waiting on this worker's assigned source partitions, at the last sample."""
        return self._waiting

    @property
    def assigned_partitions(self) -> int:
        return self._assigned

    def liveness(self) -> Verdict:
        """Alive unless the agent crashed or the event loop stopped sampling."""
        with self._lock:
            if self._crash is not None:
                return Verdict(False, f"the agent crashed ({self._crash}); restart the worker")
            silent = self._loop_silent_for()
            if silent is not None:
                return Verdict(False, f"the event loop has not run for {silent:.0f} s")
        return Verdict(True, "alive")

    def readiness(self) -> Verdict:
        """Ready when alive, partitions are assigned, recovered, and not stalled."""
        alive = self.liveness()
        if not alive.ok:
            return alive
        with self._lock:
            if self._last_sample is None:
                return Verdict(False, "starting: joining the group")
            if self._recovering:
                return Verdict(False, "rebalancing or recovering state")
            if not self._assigned:
                return Verdict(False, "no partition assigned (more workers than partitions?)")
            stalled_for = self._stalled_for()
            if stalled_for is not None:
                return Verdict(
                    False,
                    f"stalled: {self._waiting} events wait on {self._assigned} assigned "
                    f"partitions and none was processed for {stalled_for:.0f} s",
                )
        plural = "" if self._assigned == 1 else "s"
        return Verdict(True, f"ready: {self._assigned} partition{plural} assigned")

    def stalled(self) -> bool:
        """Events wait and none was processed for ``stall_seconds``, or sampling stopped."""
        with self._lock:
            return self._stalled_for() is not None or self._loop_silent_for() is not None

    def _stalled_for(self) -> float | None:
        if self._waiting_since is None:
            return None
        idle = self.clock() - max(self._last_progress, self._waiting_since)
        return idle if idle >= self.stall_seconds else None

    def _loop_silent_for(self) -> float | None:
        if self._last_sample is None:  # not started sampling yet: Faust is starting
            return None
        silent = self.clock() - self._last_sample
        return silent if silent >= self.stall_seconds else None
