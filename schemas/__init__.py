"""What crosses a boundary: token-usage events, anomaly events, dead letters,
detector configuration and worker settings (pydantic v2)."""

from tokenradar.schemas.alerts import MAX_EVENT_IDS, AnomalyEvent, AnomalyKind, Severity
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
    "parse_event",
]
