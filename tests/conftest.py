"""Shared helpers for the unit tests: events built by hand, from a seeded random.Random.

This file lives in tests/ rather than tests/unit/ on purpose: a conftest in tests/unit/
would put that folder on sys.path, where its sub-folders ``schemas/`` and ``detectors/``
would shadow the real packages of the same names.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detectors import EventScore, ScoringEngine, UserState
from schemas import TokenUsageEvent

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
