"""The worker deletes the state of a person gone for state_expiry_days (a tombstone on the
changelog), counts it, and starts them afresh when they come back: as replay does."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from worker_harness import read_topic, send_events, steady_usage

from tokenradar.lab.process import wait_until
from tokenradar.replay import replay_file
from tokenradar.streams.batch import user_state_key

pytestmark = pytest.mark.integration


def _later(events: list[dict], days: float) -> list[dict]:  # type: ignore[type-arg]
    return [{**event, "timestamp": (datetime.fromisoformat(event["timestamp"])
                                    + timedelta(days=days)).isoformat()} for event in events]


def test_worker_deletes_the_state_of_people_gone_and_counts_them(
        broker_url, topics, start_worker, tmp_path):
    ana, bob = steady_usage("ana", 40), _later(steady_usage("bob", 40), 5)
    back = [{**event, "event_id": event["event_id"] + "-back"}
            for event in _later(steady_usage("ana", 10, seed=1), 6)]
    worker = start_worker(topics, extra_options={"state-expiry-days": "2"})
    send_events(broker_url, topics.input, ana + bob, key=b"platform")
    worker.wait_for_scored(80)

    def gauge(name: str) -> float:
        return worker.metrics().get((name, ()), -1.0)

    wait_until(lambda: gauge("tokenradar_users_expired_total") == 1, 30, worker.describe)
    assert gauge("tokenradar_users_held") == 1  # bob
    changelog = read_topic(broker_url, f"{topics.group}-user-state-changelog", count=1)
    ana_key = user_state_key("platform", "ana")
    assert [record.value is None for record in changelog if record.key == ana_key][-1], \
        "ana's last changelog record is a tombstone"

    send_events(broker_url, topics.input, back, key=b"platform")
    worker.wait_for_scored(90)
    wait_until(lambda: gauge("tokenradar_users_held") == 2, 30, worker.describe)
    assert gauge("tokenradar_users_expired_total") == 1  # deleted once; back as a new user

    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(event) + "\n" for event in ana + bob + back))
    summary = replay_file(events, tmp_path / "alerts.jsonl", state_expiry_days=2)
    assert summary.expired == 1


def test_a_restarted_worker_expires_the_states_it_recovered(
        broker_url, topics, start_worker, tmp_path):
    ana, bob = steady_usage("ana", 30), _later(steady_usage("bob", 30), 5)
    first = start_worker(topics, extra_options={"state-expiry-days": "0"})  # kept for ever
    send_events(broker_url, topics.input, ana + bob, key=b"platform")
    first.wait_for_scored(60)
    wait_until(lambda: first.metrics().get(("tokenradar_users_held", ())) == 2, 30,
               first.describe)
    first.stop()
    second = start_worker(topics, extra_options={"state-expiry-days": "2"})
    wait_until(lambda: second.metrics().get(("tokenradar_users_expired_total", ())) == 1, 60,
               second.describe)
    assert second.metrics().get(("tokenradar_users_held", ())) == 1
    changelog = read_topic(broker_url, f"{topics.group}-user-state-changelog", count=1)
    ana_key = user_state_key("platform", "ana")
    assert [record.value for record in changelog if record.key == ana_key][-1] is None
