"""A verdict on an alert: what a person says of it, on the ``token-anomalies.feedback`` topic.

``false`` (the alert was wrong) and ``expected`` (right, but normal for them) silence
that user (or team) and kind from ``timestamp`` until ``until``, and the detectors
learn the behaviour meanwhile; ``true`` is recorded. A verdict carries the alert's
``user_id``, ``team`` and ``kind``, so the worker can take it to where that user's
state lives without looking the alert up.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

VerdictValue = Literal["false", "true", "expected"]
SILENCING: frozenset[str] = frozenset({"false", "expected"})
"""Verdicts that silence the user and kind for a while."""
FEEDBACK_SCHEMA_VERSION = 1
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


class FeedbackVerdict(BaseModel):
    """One person's verdict on one alert. Key: the ``alert_id``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    alert_id: Annotated[str, Field(min_length=1, max_length=128)]
    verdict: VerdictValue = Field(
        description="false: a false alert; expected: right, but normal for this user or "
        "team; true: a real incident (recorded only).")
    user_id: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        description="The alert's user_id (team:<team> for a population shift).")
    team: Annotated[str, Field(max_length=256)] | None = None
    kind: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="The alert's kind: the kind silenced.")
    timestamp: AwareDatetime = Field(
        description="When the verdict was given: it applies to events at or after this "
        "event time.")
    until: AwareDatetime | None = Field(
        None, description="false and expected: the silence ends here (event time); "
        "true: none.")
    note: Annotated[str, Field(max_length=1000)] | None = None
    schema_version: int = FEEDBACK_SCHEMA_VERSION

    @model_validator(mode="after")
    def _silence_has_an_end(self) -> Self:
        if self.verdict in SILENCING:
            if self.until is None:
                raise ValueError(f"a {self.verdict!r} verdict needs 'until', the end of "
                                 "its silence")
            if self.until <= self.timestamp:
                raise ValueError(f"'until' ({self.until.isoformat()}) must be after "
                                 f"'timestamp' ({self.timestamp.isoformat()})")
        elif self.until is not None:
            raise ValueError("a 'true' verdict silences nothing: leave 'until' out")
        return self

    @property
    def routing_key(self) -> str:
        """Where the user's state lives: the team, else the user (as for events)."""
        return self.team if self.team is not None else self.user_id


class InvalidVerdict(ValueError):
    """A feedback message that is not a verdict; the message says why."""


def parse_verdict(raw: bytes | str) -> FeedbackVerdict:
    """The verdict in ``raw`` (JSON), or :class:`InvalidVerdict` naming the problem."""
    try:
        return FeedbackVerdict.model_validate_json(raw)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(map(str, problem["loc"])) or "message"
        raise InvalidVerdict(f"{where}: {problem['msg'].removeprefix('Value error, ')}"
                             ) from None


def parse_duration(text: str) -> timedelta:
    """``14d``, ``36h``, ``90m``, ``2w`` -> a timedelta; ValueError saying what is accepted.

    >>> parse_duration("14d"), parse_duration("1.5h")
    (datetime.timedelta(days=14), datetime.timedelta(seconds=5400))
    """
    match = _DURATION.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration: give a positive number and a unit, "
                         "m (minutes), h (hours), d (days) or w (weeks), e.g. 14d")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
