"""The worker and ``tokenradar replay`` give the same alerts for the same events.

The events are a simulated organisation with injected incidents (teams included),
produced in file order keyed by routing key (the team, else the user id), as the
README recommends: so each team's events reach the worker in replay's order, and the
team's baselines and its members' are updated in the same order on both.
"""

from __future__ import annotations

import json

import pytest
from worker_harness import read_topic, send_by_route

from tokenradar.lab.simulation import SimulationSpec, simulate
from tokenradar.replay import replay_file
from tokenradar.schemas import AnomalyEvent

pytestmark = pytest.mark.integration


def test_worker_alerts_equal_replay_alerts(broker_url, topics, start_worker, tmp_path):
    events, _labels = simulate(SimulationSpec(users=24, teams=3, days=12, seed=3,
                                             incidents_per_kind=1, shifted_teams=1))
    assert any(event.get("team") for event in events)
    events_path, replay_alerts_path = tmp_path / "events.jsonl", tmp_path / "alerts.jsonl"
    events_path.write_text("".join(json.dumps(event) + "\n" for event in events))
    summary = replay_file(events_path, replay_alerts_path)
    expected = [
        AnomalyEvent.model_validate_json(line)
        for line in replay_alerts_path.read_text().splitlines()
    ]
    assert expected, "the simulation should inject incidents that replay finds"

    send_by_route(broker_url, topics.input, events)
    # 4 of 24 users kept decoded: the others are decoded again at each event, as in an
    # organisation larger than the default's; the alerts are the same all the same.
    worker = start_worker(topics, extra_options={"decoded-users": "4"})
    worker.wait_for_events("scored", summary.events)
    records = read_topic(broker_url, topics.alerts, count=len(expected))
    published = [AnomalyEvent.model_validate_json(record.value) for record in records]

    def comparable(alerts: list[AnomalyEvent]) -> list[tuple[str, str, str, str]]:
        return sorted((a.alert_id, a.user_id, a.kind, a.event_time.isoformat()) for a in alerts)

    assert comparable(published) == comparable(expected)
    assert worker.events("dead_lettered") == 0
    assert worker.events("duplicate") == summary.duplicates
