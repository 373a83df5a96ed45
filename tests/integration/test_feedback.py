"""Verdicts on the real broker: an alert, a `false` verdict given with `tokenradar
feedback`, the same behaviour the next day (no alert) and after the silence (an alert
again); and `replay --feedback` gives the worker's alerts for the same events and verdict.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from worker_harness import read_topic, send_events

from tokenradar.lab.process import wait_until
from tokenradar.replay import replay_file
from tokenradar.schemas import AnomalyEvent
from tokenradar.schemas.feedback import FeedbackVerdict

pytestmark = pytest.mark.integration

DAY_ONE = datetime(2026, 11, 24, tzinfo=UTC)
"""A Tuesday."""
SILENCE = "2d"


def _day(user: str, day: int) -> list[dict]:  # type: ignore[type-arg]
    """A morning of ~1,000-token requests, then one of 250,000 at 13:00."""
    rng = random.Random(f"{user}-{day}")
    at = DAY_ONE + timedelta(days=day, hours=9)
    events = []
    for i in range(60):
        at += timedelta(seconds=rng.uniform(60, 200))
        events.append({"event_id": f"{user}-{day}-{i}", "timestamp": at.isoformat(),
                       "user_id": user, "team": "platform", "model": "claude-sonnet",
                       "input_tokens": int(900 * rng.uniform(0.9, 1.1)),
                       "output_tokens": int(300 * rng.uniform(0.9, 1.1)),
                       "session_id": f"{user}-{day}-{i // 10}",
                       "prompt_fingerprint": f"{rng.getrandbits(64):016x}"})
    events.append({**events[-1], "event_id": f"{user}-{day}-huge", "input_tokens": 250_000,
                   "session_id": f"{user}-{day}-huge",
                   "timestamp": (DAY_ONE + timedelta(days=day, hours=13)).isoformat()})
    return events


def _days(day: int) -> list[dict]:  # type: ignore[type-arg]
    """ana (who gets the verdict) and bo (who does not) do the same, interleaved by time."""
    return sorted(_day("ana", day) + _day("bo", day), key=lambda e: e["timestamp"])


def _spikes(broker_url: str, topic: str, count: int) -> dict[str, list[AnomalyEvent]]:
    alerts = [AnomalyEvent.model_validate_json(r.value)
              for r in read_topic(broker_url, topic, count)]
    by_user: dict[str, list[AnomalyEvent]] = {}
    for alert in alerts:
        by_user.setdefault(alert.user_id, []).append(alert)
    return by_user


def test_a_false_verdict_silences_the_next_day_and_expires(
        broker_url, topics, start_worker, tmp_path):
    worker = start_worker(topics)
    sent = []

    def send(day: int) -> None:
        events = _days(day)
        send_events(broker_url, topics.input, events, key=b"platform")
        sent.extend(events)
        worker.wait_for_scored(len(sent), timeout_s=90)

    send(0)  # two weeks of history in one morning would be nicer; 60 requests suffice
    first = _spikes(broker_url, topics.alerts, 2)
    (ana_alert,) = first["ana"]
    assert ana_alert.kind == "spike" and len(first["bo"]) == 1

    given_at = ana_alert.event_time + timedelta(minutes=10)
    command = [sys.executable, "-m", "tokenradar", "feedback", ana_alert.alert_id[:12],
               "--verdict", "false", "--for", SILENCE, "--at", given_at.isoformat(),
               "--note", "a nightly export", "--broker", broker_url,
               "--alerts-topic", topics.alerts, "--topic", topics.feedback]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "silenced" in done.stdout
    wait_until(lambda: worker.metrics().get(
        ("tokenradar_verdicts_total", (("verdict", "false"),)), 0) == 1, 60, worker.describe)

    send(1)  # the next day: the same behaviour, silenced for ana, alerted for bo
    send(3)  # after the silence's two days: alerted again for both
    alerts = _spikes(broker_url, topics.alerts, 5)
    days = {user: [(a.event_time - DAY_ONE).days for a in alerts[user] if a.kind == "spike"]
            for user in ("ana", "bo")}
    assert days == {"ana": [0, 3], "bo": [0, 1, 3]}
    assert worker.metrics()[("tokenradar_silenced_alerts_total",
                             (("kind", "spike"), ("reason", "verdict")))] == 1

    # replay --feedback, given the same events and the verdict the worker got: the same.
    events_path, feedback_path = tmp_path / "events.jsonl", tmp_path / "feedback.jsonl"
    events_path.write_text("".join(json.dumps(event) + "\n" for event in sent))
    (record,) = read_topic(broker_url, topics.feedback, 1)
    verdict = FeedbackVerdict.model_validate_json(record.value)
    assert (verdict.user_id, verdict.kind, verdict.timestamp) == ("ana", "spike", given_at)
    assert record.key == ana_alert.alert_id.encode()
    feedback_path.write_bytes(record.value + b"\n")
    replay_file(events_path, tmp_path / "alerts.jsonl", feedback=feedback_path)
    replayed = [AnomalyEvent.model_validate_json(line)
                for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]

    def comparable(found: list[AnomalyEvent]) -> list[tuple[str, str, str]]:
        return sorted((a.alert_id, a.kind, a.severity) for a in found)

    assert comparable(replayed) == comparable([a for user in alerts.values() for a in user])
