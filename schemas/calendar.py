"""Calendar windows: known times when some kinds are silenced or not learned from."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import AwareDatetime, Field, field_validator, model_validator

from tokenradar.schemas.kinds import declared_kinds
from tokenradar.schemas.sections import Section


class CalendarWindow(Section):
    """A known time (an offsite, a hackathon, a migration) when some kinds are silenced
    or not learned from, for some teams or everyone: Elastic's calendars, Alertmanager's
    silences. Event time decides, so the worker and ``replay`` agree."""

    name: Annotated[str, Field(min_length=1)] = Field(description="What the window is, for "
                                                      "people and error messages.")
    start: AwareDatetime = Field(description="First instant (RFC 3339 with an offset).")
    end: AwareDatetime = Field(description="First instant after the window.")
    teams: list[str] = Field(default_factory=list,
                             description="Teams it applies to; empty: everyone.")
    kinds: list[str] = Field(default_factory=list,
                             description="Kinds it applies to; empty: every kind.")
    silence: bool = Field(True, description="No alert of these kinds during the window.")
    learn: bool = Field(True, description="false: these kinds' baselines are not updated "
                        "during the window (its usage is not what the users normally do).")

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        known = [kind.name for kind in declared_kinds()]
        for kind in kinds:
            if kind not in known:
                raise ValueError(f"{kind!r} is not a kind; the kinds are {', '.join(known)}")
        return kinds

    @model_validator(mode="after")
    def _meaningful(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"window {self.name!r}: end ({self.end.isoformat()}) must be "
                             f"after start ({self.start.isoformat()})")
        if not self.silence and self.learn:
            raise ValueError(f"window {self.name!r} does nothing: set silence = true, "
                             "learn = false, or both")
        return self
