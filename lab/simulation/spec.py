"""What a simulation is asked for (:class:`SimulationSpec`) and what it reports (:class:`Label`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tokenradar.lab.simulation.knobs import IncidentRanges, OrganisationKnobs
from tokenradar.schemas.kinds import (
    CREEP,
    GAMING,
    NEW_PATTERN,
    RUNAWAY_AGENT,
    SCRIPTED_LOOP,
    SPIKE,
)

INCIDENT_KINDS = tuple(kind.name for kind in (GAMING, SCRIPTED_LOOP, RUNAWAY_AGENT, NEW_PATTERN,
                                              CREEP, SPIKE))
"""Injected anomalies, each labelled; a detector should alert on them. The declared kinds
the simulator can inject (a planner each in :mod:`.incidents`), in the order it draws them."""

BENIGN_KINDS = ("vacation_return", "new_joiner", "model_adoption", "allowlisted",
                "service_account", "on_call")
"""Labelled changes that are normal; an alert on them is a false alert."""


@dataclass(frozen=True)
class SimulationSpec:
    """The organisation to simulate. Same spec (seed included) -> byte-identical output.

    Parameters
    ----------
    users, teams
        People (service accounts come on top) and the teams they are spread over.
    days, start
        Length of the run and its first instant (UTC midnight; the default is a Monday).
    seed
        Everything random follows from it.
    warmup_days
        No injected incident starts before this many days of history.
    incidents_per_kind
        Injected incidents of each kind in ``incident_kinds``, on distinct people; fewer
        when the organisation is too small (at most half of the eligible people).
    shifted_teams
        Teams told to adopt AI during the run: a ``population_shift``, expected to be
        reported once for the team, and for none of its members.
    vacation_share, new_joiner_share, adoption_share
        Share of people away for two weeks, joining mid-run, switching main model for good.
    service_accounts
        Add the allowlisted ``svc-nightly-eval`` batch job and ``svc-ci-review`` bot.
    duplicate_share
        Share of events delivered twice (same ``event_id``), as a redelivering producer
        would; duplicates are not labelled.
    knobs
        None: the default organisation. Else a randomised one: its habits, its incident
        ranges, its service accounts, shifted teams and duplicates are the knobs' (see
        :func:`tokenradar.lab.simulation.random_organisation`).
    """

    users: int = 300
    teams: int = 15
    days: int = 28
    seed: int = 7
    start: datetime = datetime(2026, 11, 2, tzinfo=UTC)
    warmup_days: int = 7
    incidents_per_kind: int = 9
    incident_kinds: tuple[str, ...] = INCIDENT_KINDS
    shifted_teams: int = 2
    vacation_share: float = 0.05
    new_joiner_share: float = 0.03
    adoption_share: float = 0.03
    service_accounts: bool = True
    duplicate_share: float = 0.0
    knobs: OrganisationKnobs | None = None

    def __post_init__(self) -> None:
        for name in ("users", "teams", "days"):
            if getattr(self, name) < 1:
                raise ValueError(f"simulation {name} must be at least 1, got {getattr(self, name)}")
        for name in ("warmup_days", "incidents_per_kind", "shifted_teams"):
            if getattr(self, name) < 0:
                raise ValueError(f"simulation {name} must be >= 0, got {getattr(self, name)}")
        for name in ("vacation_share", "new_joiner_share", "adoption_share", "duplicate_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"simulation {name} must be in [0, 1], got {getattr(self, name)}")
        unknown = set(self.incident_kinds) - set(INCIDENT_KINDS)
        if unknown:
            raise ValueError(f"unknown incident kinds {sorted(unknown)}; known: {INCIDENT_KINDS}")
        if self.start.tzinfo is None:
            raise ValueError("simulation start must be timezone-aware (UTC)")

    @property
    def ranges(self) -> IncidentRanges:
        """What each injected incident draws its shape from."""
        return self.knobs.incidents if self.knobs is not None else IncidentRanges()

    @property
    def origin(self) -> float:
        """The run's first instant, epoch seconds."""
        return self.start.timestamp()

    @property
    def end(self) -> float:
        """The run's end (exclusive), epoch seconds."""
        return self.origin + self.days * 86_400.0


@dataclass(frozen=True)
class Label:
    """One labelled stretch of someone's usage: an injected incident, or a benign change.

    ``start`` and ``end`` are RFC 3339 UTC with milliseconds. A ``population_shift`` is
    labelled once for the team: ``user_id`` is ``team:<team>`` and ``members`` lists its
    people. ``params`` records the shape drawn for this incident (factor, period, ...).
    """

    incident_id: str
    kind: str
    user_id: str
    team: str
    start: str
    end: str
    benign: bool = False
    members: tuple[str, ...] = ()
    params: tuple[tuple[str, float | str], ...] = ()

    def to_json(self) -> dict[str, object]:
        record: dict[str, object] = {
            "incident_id": self.incident_id, "kind": self.kind, "user_id": self.user_id,
            "team": self.team, "start": self.start, "end": self.end, "benign": self.benign}
        if self.members:
            record["members"] = list(self.members)
        if self.params:
            record["params"] = dict(self.params)
        return record
