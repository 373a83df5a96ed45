"""State expiry: the state of a person who stopped sending events does not live forever.

A user's state is *stale* once an event of theirs comes more than ``expiry_days`` of
event time after the last one it learned: that event starts the user afresh, as a new
user. The worker and ``replay`` apply this rule to the same events in the same order, so
they agree. Separately, and only to bound storage, a state may be *swept* (deleted: a
tombstone on the worker's changelog) once the newest event time scored beside it has
moved more than ``expiry_days`` plus the reorder window past it; a later event of that
user would find it stale anyway, unless it came later than the reorder window allows.

>>> retention = StateRetention(expiry_days=30, margin_seconds=120)
>>> day = 86_400.0
>>> retention.is_stale(last_time=0.0, time=29 * day), retention.is_stale(0.0, 31 * day)
(False, True)
>>> retention.is_stale(last_time=-1.0, time=31 * day)  # a new user: nothing to expire
False
>>> retention.sweepable(last_time=0.0, newest=31 * day)
True
>>> StateRetention(expiry_days=0).is_stale(0.0, 1000 * day)  # 0: never
False
"""

from __future__ import annotations

from dataclasses import dataclass

DAY_SECONDS = 86_400.0


@dataclass(frozen=True, slots=True)
class StateRetention:
    """How long, in event time, a user's state outlives their last event (0: for ever).

    Parameters
    ----------
    expiry_days
        Days of event time without an event after which a user starts afresh.
    margin_seconds
        How far before the newest event an event may still come and be scored in order
        (the reorder window): a sweep waits that much longer.
    """

    expiry_days: float
    margin_seconds: float = 0.0

    def is_stale(self, last_time: float, time: float) -> bool:
        """An event at ``time`` finds a state last updated at ``last_time`` expired."""
        return (self.expiry_days > 0 and last_time >= 0
                and time - last_time > self.expiry_days * DAY_SECONDS)

    def sweepable(self, last_time: float, newest: float) -> bool:
        """A state may be deleted, events up to ``newest`` having been scored beside it."""
        return self.is_stale(last_time, newest - self.margin_seconds)
