"""What crosses a boundary: token-usage events, anomaly events, dead letters,
detector configuration and worker settings (pydantic v2)."""

from schemas.alerts import MAX_EVENT_IDS, AnomalyEvent, AnomalyKind, Severity
from schemas.config import DetectorConfig
from schemas.dead_letter import DeadLetter
from schemas.events import InvalidEvent, TokenUsageEvent, parse_event
from schemas.settings import WorkerSettings

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
    "parse_event",
]
