"""Which user states the worker deletes, and when: the storage side of state expiry.

The rule that decides results is :class:`tokenradar.detectors.retention.StateRetention`
(a stale state is replaced at the user's next event, in the worker and ``replay`` alike).
This index only finds the states of people who stopped sending events, so that they are
deleted from the table (a tombstone on the changelog) instead of kept for ever
(faust-streaming #385). A partition is swept each time its newest event time reaches a
new day: event time, so a backlog read in minutes sweeps as the days it spans would.
"""

from __future__ import annotations

from tokenradar.detectors.retention import DAY_SECONDS, StateRetention


class StateIndex:
    """The user states this worker holds, by partition, with the event time each last
    learned.

    >>> index = StateIndex(StateRetention(expiry_days=2))
    >>> index.note(0, b"core\\x1fana", 0.0)
    >>> index.note(0, b"core\\x1fbob", 5 * DAY_SECONDS)
    >>> index.due(), len(index)
    ([b'core\\x1fana'], 1)
    >>> index.due()  # the same day: nothing more to look at
    []
    """

    def __init__(self, retention: StateRetention) -> None:
        self.retention = retention
        self._times: dict[int, dict[bytes, float]] = {}
        self._newest: dict[int, float] = {}
        self._swept_day: dict[int, int] = {}

    def __len__(self) -> int:
        return sum(len(times) for times in self._times.values())

    def note(self, partition: int, key: bytes, last_time: float) -> None:
        self._times.setdefault(partition, {})[key] = last_time
        self._newest[partition] = max(self._newest.get(partition, -1.0), last_time)

    def due(self) -> list[bytes]:
        """The keys to delete now, forgotten here: those of partitions whose newest event
        reached a new day since their last sweep, stale by then."""
        if self.retention.expiry_days <= 0:
            return []
        gone: list[bytes] = []
        for partition, newest in self._newest.items():
            day = int(newest // DAY_SECONDS)
            if day <= self._swept_day.get(partition, -1):
                continue
            self._swept_day[partition] = day
            times = self._times[partition]
            stale = [key for key, last in times.items()
                     if self.retention.sweepable(last, newest)]
            for key in stale:
                del times[key]
            gone += stale
        return gone

    def forget(self) -> None:
        """After a rebalance: partitions came and went; the table is indexed again."""
        self._times.clear()
        self._newest.clear()
        self._swept_day.clear()
