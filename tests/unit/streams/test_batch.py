"""The batch step, without a broker: every message gets exactly one fate."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from detectors import ScoringEngine
from schemas import DeadLetter, DetectorConfig
from streams.batch import Received, partition_for, process_batch

PARTITIONS = 4
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def _message(user: str, number: int, team: str | None = "core") -> Received:
    event = {"event_id": f"{user}-{number}", "timestamp": "2026-11-24T09:15:02.120Z",
             "user_id": user, "team": team, "model": "m", "input_tokens": 100,
             "output_tokens": 10}
    route = team or user
    return Received(route.encode(), json.dumps(event).encode(), "usage",
                    partition_for(route, PARTITIONS), number)


class _Failing(ScoringEngine):
    """An engine whose detectors break on one user's events: a bug, not a bad event."""

    def score_event(self, state, event, detected_at, team_state=None):  # type: ignore[no-untyped-def]
        if event.user_id == "bob":
            raise ZeroDivisionError("float division by zero")
        return super().score_event(state, event, detected_at, team_state)


def test_an_event_the_detectors_fail_on_is_dead_lettered_and_the_batch_goes_on() -> None:
    messages = [_message("ana", 1), _message("bob", 2), _message("ana", 3)]
    outcome = process_batch(messages, _Failing(DetectorConfig()), {}.get, "usage", PARTITIONS,
                            NOW)
    assert outcome.scored == 2
    (letter,) = outcome.dead_letters
    assert isinstance(letter, DeadLetter)
    assert letter.error_type == "scoring_error"
    assert "ZeroDivisionError" in letter.reason
    assert letter.original == messages[1].value


def test_an_event_on_another_partition_than_its_team_is_rekeyed_by_team() -> None:
    message = _message("ana", 1)
    wrong = Received(None, message.value, "usage", (message.partition + 1) % PARTITIONS, 7)
    outcome = process_batch([wrong], ScoringEngine(DetectorConfig()), {}.get, "usage",
                            PARTITIONS, NOW)
    assert outcome.rekeyed == [(b"core", message.value)]
    assert outcome.scored == 0 and not outcome.states
