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
    GAMING = "gaming"
    """Tokenmaxxing: prompts padded with filler, input far above norm, output unchanged."""
    SCRIPTED_LOOP = "scripted_loop"
    """Near-identical requests at machine-regular intervals."""
    RUNAWAY_AGENT = "runaway_agent"
    """Agent traffic sustained through the user's nights or weekends."""
    NEW_PATTERN = "new_pattern"
    """A burst on a model or client the user never used, at an unusual hour."""
    CREEP = "creep"
    """The user's daily level rising steadily, day after day."""
    POPULATION_SHIFT = "population_shift"
    """A whole team moving together; reported once, for ``team:<team>``."""
    NOISY_IDENTITY = "noisy_identity"
    """An identity that raised more alerts than a person plausibly causes: one summary,
    then quiet for the window (a machine account, or a detector that misreads them)."""


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
