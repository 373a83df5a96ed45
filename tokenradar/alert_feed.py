"""Following alerts as they arrive: which message opens an incident, which escalates one,
which only repeats what was seen; and which alerts a reader asked for.

No Kafka here: ``alerts tail`` and the bridge feed it messages and act on the answer.

>>> from datetime import UTC, datetime
>>> at = datetime(2026, 11, 20, 19, tzinfo=UTC)
>>> first = AnomalyEvent(alert_id="a1", user_id="ana", kind="spike", detector="spike",
...     score=0.7, severity="medium", event_time=at, detected_at=at, feature="tokens",
...     observed=9.0, expected=1.0, event_ids=["e1"], explanation="9x", config_version="v")
>>> feed = AlertFeed()
>>> feed.see(first).change, feed.see(first).change
(<Change.NEW: 'new'>, <Change.REPEATED: 'repeated'>)
>>> seen = feed.see(first.model_copy(update={"severity": "high", "score": 0.9}))
>>> seen.change, seen.previous_severity
(<Change.ESCALATED: 'escalated'>, 'medium')
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import get_args

from tokenradar.schemas.alerts import AnomalyEvent, Severity

SEVERITIES: tuple[Severity, ...] = get_args(Severity)
"""From least to most severe."""


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


class Change(StrEnum):
    NEW = "new"
    """The first message of this ``alert_id``."""
    ESCALATED = "escalated"
    """The incident got worse: its ``alert_id`` re-published with a higher severity."""
    REPEATED = "repeated"
    """Nothing new: a redelivery, or a re-publication at a severity already seen."""


@dataclass(frozen=True)
class SeenAlert:
    alert: AnomalyEvent
    change: Change
    previous_severity: Severity | None = None
    """The highest severity seen before, for an escalation."""


class AlertFeed:
    """Remembers the highest severity of the latest ``memory`` alert ids.

    An id forgotten (older than ``memory`` other ids) counts as new when it comes back.
    """

    def __init__(self, memory: int = 100_000) -> None:
        self.memory = memory
        self._highest: OrderedDict[str, Severity] = OrderedDict()

    def see(self, alert: AnomalyEvent) -> SeenAlert:
        before = self._highest.get(alert.alert_id)
        if before is not None and severity_rank(alert.severity) <= severity_rank(before):
            return SeenAlert(alert, Change.REPEATED, before)
        self._highest[alert.alert_id] = alert.severity
        self._highest.move_to_end(alert.alert_id)
        if len(self._highest) > self.memory:
            self._highest.popitem(last=False)
        if before is None:
            return SeenAlert(alert, Change.NEW)
        return SeenAlert(alert, Change.ESCALATED, before)


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts a reader wants; an empty ``kinds`` or ``teams`` means all."""

    min_severity: Severity = "low"
    kinds: Collection[str] = ()
    teams: Collection[str] = ()

    def accepts(self, alert: AnomalyEvent) -> bool:
        return (severity_rank(alert.severity) >= severity_rank(self.min_severity)
                and (not self.kinds or alert.kind in self.kinds)
                and (not self.teams or alert.team in self.teams))
