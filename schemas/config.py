"""Detector configuration: what engineers tune, validated before a worker starts.

Every key is checked (unknown keys are errors, so a typo cannot silently fall back
to a default), and the whole configuration hashes to a ``config_version`` that
every alert carries.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.alerts import Severity

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
FadingFactor = Annotated[float, Field(gt=0.0, lt=1.0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScoringConfig(_Section):
    """How scores become alerts, for every detector alike."""

    alert_threshold: Probability = Field(
        0.6,
        description="A detector alerts when its score reaches this. Scores are "
        "-log10(tail probability)/10: 0.6 means a 1-in-a-million observation for this user.",
    )
    cooldown_minutes: Annotated[float, Field(ge=0)] = Field(
        240, description="One incident, one alert: a user+kind alerts again after this quiet time."
    )
    dedupe_event_ids: Annotated[int, Field(ge=0, le=4096)] = Field(
        128, description="How many recent event ids per user are remembered to drop duplicates."
    )


class SeverityBands(_Section):
    """Lowest score of each severity; below ``medium`` an alert is ``low``."""

    medium: Probability = 0.7
    high: Probability = 0.85
    critical: Probability = 0.95

    @model_validator(mode="after")
    def _ascending(self) -> Self:
        if not self.medium <= self.high <= self.critical:
            raise ValueError(
                f"bands must ascend: medium ({self.medium}) <= high ({self.high}) "
                f"<= critical ({self.critical})"
            )
        return self


class SpikeConfig(_Section):
    """A request, or an hour, far above the user's own baseline."""

    enabled: bool = True
    fading_factor: FadingFactor = Field(
        0.05, description="Weight of each new request or hour in the user's baseline."
    )
    min_history_requests: Annotated[int, Field(ge=1)] = Field(
        30, description="Requests seen before single requests are scored."
    )
    min_history_hours: Annotated[int, Field(ge=1)] = Field(
        8, description="Active hours seen before hourly totals are scored."
    )
    min_ratio: Annotated[float, Field(ge=1.0)] = Field(
        4.0, description="Alert only when observed is at least this many times expected."
    )
    min_tokens: Annotated[int, Field(ge=0)] = Field(
        20_000, description="Ignore requests and hours below this many tokens, however unusual."
    )


class DriftConfig(_Section):
    """A sustained change of the user's hourly level, found with River's PageHinkley."""

    enabled: bool = True
    min_history_hours: Annotated[int, Field(ge=1)] = Field(
        24, description="Active hours seen before the level is tested for drift."
    )
    threshold: Annotated[float, Field(gt=0)] = Field(
        3.0, description="PageHinkley lambda on log10 tokens per active hour; lower is touchier."
    )
    delta: Annotated[float, Field(ge=0)] = Field(
        0.15, description="PageHinkley tolerance: changes smaller than this (log10) are ignored."
    )
    min_ratio: Annotated[float, Field(ge=1.0)] = Field(
        1.8, description="Alert only when the new level is at least this many times the old."
    )


class RateConfig(_Section):
    """Requests arriving far faster than the user's norm, in short windows."""

    enabled: bool = True
    window_minutes: Annotated[int, Field(ge=1, le=60)] = 10
    fading_factor: FadingFactor = 0.05
    min_history_windows: Annotated[int, Field(ge=1)] = Field(
        12, description="Active windows seen before the request rate is scored."
    )
    min_ratio: Annotated[float, Field(ge=1.0)] = 4.0
    min_requests: Annotated[int, Field(ge=1)] = Field(
        40, description="Ignore windows with fewer requests than this, however unusual."
    )


class DetectorConfig(_Section):
    """The whole detector configuration, as read from a TOML file."""

    scoring: ScoringConfig = ScoringConfig()
    severity: SeverityBands = SeverityBands()
    spike: SpikeConfig = SpikeConfig()
    drift: DriftConfig = DriftConfig()
    rate: RateConfig = RateConfig()

    @model_validator(mode="after")
    def _severity_above_threshold(self) -> Self:
        if self.severity.medium < self.scoring.alert_threshold:
            raise ValueError(
                f"severity.medium ({self.severity.medium}) is below "
                f"scoring.alert_threshold ({self.scoring.alert_threshold}): "
                "raise the band or lower the threshold"
            )
        return self

    @property
    def version(self) -> str:
        """Hash of the configuration in force: equal configs give equal versions."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def severity_of(self, score: float) -> Severity:
        bands = self.severity
        if score >= bands.critical:
            return "critical"
        if score >= bands.high:
            return "high"
        if score >= bands.medium:
            return "medium"
        return "low"
