"""Observation: the per-request facts every detector reads the same way."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tokenradar.detectors.observation import observe
from tokenradar.detectors.state import UserState
from tokenradar.schemas import TokenUsageEvent


def _observed(input_tokens: int, cache_read_tokens: int) -> bool:
    event = TokenUsageEvent(
        event_id="e1", user_id="ana", model="m", input_tokens=input_tokens,
        output_tokens=100, cache_read_tokens=cache_read_tokens,
        timestamp=datetime(2026, 11, 2, 9, tzinfo=UTC))
    return observe(UserState(user_id="ana"), event, None, window_seconds=600.0).from_cache


@pytest.mark.parametrize(("input_tokens", "cache_read_tokens", "from_cache"), [
    (1000, 600, True),   # most of it a context sent before
    (1000, 500, True),   # half is "mostly", as spike, gaming and new_pattern always read it
    (1000, 400, False),  # most of it written now
    (1000, 0, False),
    # Input counts the cache reads: a request without input re-sent no context (spike's
    # answer; gaming and new_pattern used to call it read from the cache).
    (0, 0, False),
])
def test_a_request_is_from_the_cache_when_most_of_its_input_was_read_from_it(
        input_tokens: int, cache_read_tokens: int, from_cache: bool) -> None:
    assert _observed(input_tokens, cache_read_tokens) is from_cache
