"""What crosses a boundary: token-usage events, anomaly events, dead letters,
detector configuration and worker settings (pydantic v2).

``AnomalyKind`` is built from the declared kinds (:mod:`tokenradar.schemas.kinds`) each
time it is asked for, so a kind declared later is in it.
"""

from enum import StrEnum

from tokenradar.schemas.alerts import MAX_EVENT_IDS, AnomalyEvent, Severity, anomaly_kinds
from tokenradar.schemas.config import DetectorConfig
from tokenradar.schemas.dead_letter import DeadLetter
from tokenradar.schemas.events import InvalidEvent, TokenUsageEvent, parse_event
from tokenradar.schemas.settings import WorkerSettings

__all__ = [
    "MAX_EVENT_IDS",
    "AnomalyEvent",
    "AnomalyKind",
    "DeadLetter",
    "DetectorConfig",
    "InvalidEvent",
    "Severity",
    "TokenUsageEvent",
    "WorkerSettings",
    "anomaly_kinds",
    "parse_event",
]


def __getattr__(name: str) -> type[StrEnum]:
    if name == "AnomalyKind":
        return anomaly_kinds()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
