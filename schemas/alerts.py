"""The anomaly event: what tokenradar publishes to the ``token-anomalies`` topic."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal, cast

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from tokenradar.schemas.kinds import KindDeclaration, declared_kinds

Severity = Literal["low", "medium", "high", "critical"]

MAX_EVENT_IDS = 20
"""An alert names at most this many triggering events, the most recent ones."""
OMITTED_WHEN_ABSENT = ("observed_cost", "expected_cost", "exhaustion_date")
"""Optional fields added since schema 1: left out of the message rather than null."""


def anomaly_kinds() -> type[StrEnum]:
    """The documented set of anomaly kinds, as an enum: one member per declared kind
    (:mod:`tokenradar.schemas.kinds`), e.g. ``AnomalyKind.SPIKE == "spike"``.

    >>> [kind.value for kind in anomaly_kinds()][:3]
    ['spike', 'drift', 'rate']
    """
    kinds = declared_kinds()
    enum = _ENUMS.get(kinds)
    if enum is None:
        enum = _ENUMS[kinds] = cast("type[StrEnum]", StrEnum(
            "AnomalyKind", [(kind.name.upper(), kind.name) for kind in kinds]))
        enum.__doc__ = "The documented set of anomaly kinds (schemas/kinds.py declares them)."
    return enum


_ENUMS: dict[tuple[KindDeclaration[Any], ...], type[StrEnum]] = {}


def __getattr__(name: str) -> type[StrEnum]:
    # ``AnomalyKind`` is built from the declarations when it is asked for, so a kind
    # declared after this module was imported is in it too.
    if name == "AnomalyKind":
        return anomaly_kinds()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    observed_cost: Annotated[float, Field(ge=0.0)] | None = Field(
        None, description="Estimated USD of ``observed`` (at the events' cost_usd, else the "
        "configured prices); absent where the feature is not usage.")
    expected_cost: Annotated[float, Field(ge=0.0)] | None = Field(
        None, description="Estimated USD of ``expected``, priced the same way.")
    exhaustion_date: date | None = Field(
        None, description="budget_burn: the UTC day the budget runs out (or ran out) at the "
        "current pace.")

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        document: dict[str, Any] = handler(self)
        for name in OMITTED_WHEN_ABSENT:
            if document.get(name, 0) is None:
                del document[name]
        return document
