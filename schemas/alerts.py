"""The anomaly event: what tokenradar publishes to the ``token-anomalies`` topic."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Severity = Literal["low", "medium", "high", "critical"]

MAX_EVENT_IDS = 20
"""An alert names at most this many triggering events, the most recent ones."""


class AnomalyKind(StrEnum):
    """The documented set of anomaly kinds."""

    SPIKE = "spike"
    """One request or one hour far above the user's baseline."""
    DRIFT = "drift"
    """A sustained change of the user's level of usage."""
    RATE = "rate"
    """Requests arrive far faster than this user's norm."""


class AnomalyEvent(BaseModel):
    """One alert: whose usage, what is unusual, how unusual, and why we think so."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    alert_id: str = Field(description="Deterministic: same input and config give the same id.")
    user_id: str
    team: str | None = None
    kind: str = Field(description="One of AnomalyKind's values.")
    detector: str = Field(description="The configured detector that fired.")
    score: Annotated[float, Field(ge=0.0, le=1.0)]
    severity: Severity
    event_time: AwareDatetime
    detected_at: AwareDatetime
    feature: str = Field(description="The measured quantity, e.g. tokens_per_hour.")
    observed: float
    expected: float
    event_ids: Annotated[list[str], Field(max_length=MAX_EVENT_IDS)]
    explanation: str
    config_version: str
