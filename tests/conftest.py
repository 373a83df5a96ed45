"""Shared helpers for the unit tests: events built by hand, from a seeded random.Random.

This file lives in tests/ rather than tests/unit/ on purpose: a conftest in tests/unit/
would put that folder on sys.path, where its sub-folders ``schemas/`` and ``detectors/``
would shadow the real packages of the same names.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tokenradar.detectors import EventScore, ScoringEngine, UserState
from tokenradar.detectors.base import Detector, Finding, Observation, Slot
from tokenradar.schemas import TokenUsageEvent
from tokenradar.schemas.config import DetectorSection

START = datetime(2026, 11, 2, 9, tzinfo=UTC)
"""A Monday morning, UTC."""


class EventLists:
    """Builds token-usage events and scores them, so a test reads as a story."""

    start = START

    def event(self, number: int, at: datetime, tokens: int, user: str = "ana",
              team: str | None = "core") -> TokenUsageEvent:
        return TokenUsageEvent(event_id=f"{user}-{number}", user_id=user, team=team,
                               model="claude-sonnet-4-5", timestamp=at,
                               input_tokens=tokens, output_tokens=0)

    def steady(self, rng: random.Random, hours: int, per_hour: int = 6, tokens: int = 2000,
               start: datetime = START, user: str = "ana", first: int = 0
               ) -> list[TokenUsageEvent]:
        """``per_hour`` requests every hour, spread over the hour, tokens jittered ~20%."""
        events = []
        for hour in range(hours):
            for k in range(per_hour):
                at = start + timedelta(hours=hour, minutes=60 * k / per_hour + rng.uniform(0, 5))
                size = int(tokens * rng.lognormvariate(0.0, 0.2))
                events.append(self.event(first + len(events), at, size, user=user))
        return events

    def burst(self, count: int, start: datetime, every_seconds: float, tokens: int,
              user: str = "ana", first: int = 100_000, regular: bool = False
              ) -> list[TokenUsageEvent]:
        """``count`` requests about ``every_seconds`` apart: irregular gaps (0.3x-1.7x) as a
        person's, or exactly regular as a script's."""
        rng = random.Random(first)
        events, at = [], start
        for i in range(count):
            events.append(self.event(first + i, at, tokens, user=user))
            gap = every_seconds if regular else every_seconds * rng.uniform(0.3, 1.7)
            at += timedelta(seconds=gap)
        return events

    def score_all(self, engine: ScoringEngine, events: Iterable[TokenUsageEvent],
                  state: UserState | None = None) -> list[EventScore]:
        """Score events of one user in order; detected_at is the event time (as in replay)."""
        events = list(events)
        if state is None:
            state = engine.new_state(events[0].user_id)
        return [engine.score_event(state, event, event.timestamp) for event in events]

    def request(self, number: int, at: datetime, input_tokens: int, output_tokens: int = 600,
                user: str = "ana", team: str | None = "core",
                model: str = "claude-sonnet-4-5", client: str | None = "ide",
                session: str | None = None, fingerprint: str | None = None
                ) -> TokenUsageEvent:
        """One request with every field a behaviour detector reads."""
        return TokenUsageEvent(
            event_id=f"{user}-{number}", user_id=user, team=team, model=model,
            timestamp=at, input_tokens=input_tokens, output_tokens=output_tokens,
            client=client, session_id=session, prompt_fingerprint=fingerprint)

    def workdays(self, rng: random.Random, days: int, start: datetime = START,
                 user: str = "ana", team: str | None = "core", input_tokens: int = 3000,
                 output_tokens: int = 600, requests: tuple[int, int] = (26, 34),
                 scale: Callable[[int], float] = lambda workday: 1.0, first: int = 0
                 ) -> list[TokenUsageEvent]:
        """A person at work: weekdays 09:00-17:00 UTC from ``start``'s date, ``days``
        calendar days; irregular gaps, varied tokens (lognormal), mostly fresh prompts
        (~5% re-sent), hour-long sessions. Day ``d``'s tokens are times ``scale(d)``,
        ``d`` counting working days from 0."""
        events: list[TokenUsageEvent] = []
        midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
        workday = 0
        for day in range(days):
            date = midnight + timedelta(days=day)
            if date.weekday() >= 5:
                continue
            factor = scale(workday)
            seconds = sorted(rng.uniform(9 * 3600, 17 * 3600)
                             for _ in range(rng.randint(*requests)))
            for second in seconds:
                number = first + len(events)
                resent = rng.random() < 0.05 and number > first
                events.append(self.request(
                    number, date + timedelta(seconds=second),
                    int(input_tokens * factor * rng.lognormvariate(0.0, 0.4)),
                    int(output_tokens * factor * rng.lognormvariate(0.0, 0.4)),
                    user=user, team=team, session=f"{user}-s{day}-{int(second // 3600)}",
                    fingerprint=f"{user}-p{number - 1 if resent else number}"))
            workday += 1
        return events

    def team_days(self, members: int, days: int, team: str = "core",
                  scale: Callable[[int, int], float] = lambda member, workday: 1.0,
                  seed: int = 0) -> list[TokenUsageEvent]:
        """``members`` people of one team at work (see ``workdays``), users m0, m1, ...
        of different sizes; member ``m``'s working day ``d`` is times ``scale(m, d)``."""
        events: list[TokenUsageEvent] = []
        for member in range(members):
            events += self.workdays(
                random.Random(seed * 1000 + member), days, user=f"m{member}", team=team,
                input_tokens=int(3000 * 1.3 ** (member % 4)),
                scale=lambda workday, member=member: scale(member, workday))
        return events

    def score_people(self, engine: ScoringEngine, events: Iterable[TokenUsageEvent]
                     ) -> list[EventScore]:
        """Score several users' events in time order with their teams' states, as
        replay and the worker do; one result per event, in the order scored."""
        from tokenradar.replay import score_stream

        ordered = sorted(events, key=lambda e: e.timestamp)
        arrivals = ((event, event.model_dump_json()) for event in ordered)
        return [scored.result for scored in score_stream(arrivals, engine)]


class _NoNumbers(Slot):
    """A detector's slot with nothing in it."""


class FixedScore(Detector):
    """Finds the same score on every request: lets a test put a score exactly where it
    wants (or stand for a detector that misreads how a team works)."""

    name = "fixed"
    kind = "spike"
    slot_type = _NoNumbers

    def __init__(self, score: float) -> None:
        self.score = score
        self.config = DetectorSection()

    def observe(self, slot: Any, observation: Observation) -> Finding | None:
        return Finding(score=self.score, feature="tokens", observed=1.0, expected=1.0,
                       explanation="fixed", single_event=True)


class Clock:
    """A clock the test moves by hand (``clock.now += 61``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def event_lists() -> EventLists:
    return EventLists()


@pytest.fixture
def valid_event() -> dict[str, Any]:
    """A complete, valid token-usage event as a producer would send it."""
    return {
        "event_id": "req-0001",
        "timestamp": "2026-11-24T09:15:02.120Z",
        "user_id": "ana@example.com",
        "team": "core",
        "model": "claude-sonnet-4-5",
        "input_tokens": 1200,
        "output_tokens": 300,
        "cache_read_tokens": 100,
        "cost_usd": 0.012,
        "client": "ide",
        "session_id": "s-1",
        "prompt_fingerprint": "ab12cd34",
        "schema_version": 1,
    }
