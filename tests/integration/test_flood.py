"""A flood for one team: its reorder buffer stays bounded, the worker stays up (issue 14).

5,000 requests of one team's user within one minute of event time, on top of a simulated
organisation: held whole, that team's buffer record would be about 1.6 MB, more than a
producer request (1 MB), and the changelog write would crash the worker. Bounded
(``scoring.reorder_max_events``), its earliest events are scored early, in order, as
``replay`` scores them: the same alerts, every event accounted for.
"""

from __future__ import annotations

import json

import pytest
from worker_harness import read_topic, send_by_route

from tokenradar.lab.process import wait_until
from tokenradar.lab.simulation import SimulationSpec, simulate, with_flood
from tokenradar.replay import replay_file
from tokenradar.schemas import AnomalyEvent

pytestmark = pytest.mark.integration

FLOOD = 5_000


def _organisation_with_a_flood() -> list[dict[str, object]]:
    events, _ = simulate(SimulationSpec(users=8, teams=2, days=8, seed=5,
                                        incidents_per_kind=1, shifted_teams=0))
    return with_flood(events, FLOOD, seed=11)


def test_a_flood_for_one_team_is_scored_without_a_crash_as_replay_scores_it(
        broker_url, topics, start_worker, tmp_path):
    events = _organisation_with_a_flood()
    events_path, replay_alerts_path = tmp_path / "events.jsonl", tmp_path / "alerts.jsonl"
    events_path.write_text("".join(json.dumps(event) + "\n" for event in events))
    summary = replay_file(events_path, replay_alerts_path)
    expected = [AnomalyEvent.model_validate_json(line)
                for line in replay_alerts_path.read_text().splitlines()]
    assert expected, "the simulation should inject incidents that replay finds"

    send_by_route(broker_url, topics.input, events)
    worker = start_worker(topics)
    counted = ("scored", "late", "duplicate", "dead_lettered")
    wait_until(lambda: sum(worker.outcomes()[o] for o in counted) >= len(events), 90,
               worker.describe)
    records = read_topic(broker_url, topics.alerts, count=len(expected))
    published = [AnomalyEvent.model_validate_json(record.value) for record in records]

    def comparable(alerts: list[AnomalyEvent]) -> list[tuple[str, str, str, str]]:
        return sorted((a.alert_id, a.user_id, a.kind, a.event_time.isoformat()) for a in alerts)

    assert worker.process.poll() is None, worker.describe()
    assert "crash" not in worker.log_path.read_text(errors="replace")
    outcomes = worker.outcomes()
    assert {o: outcomes[o] for o in counted} == {
        "scored": summary.events - summary.late - summary.duplicates, "late": summary.late,
        "duplicate": summary.duplicates, "dead_lettered": 0}
    assert comparable(published) == comparable(expected)
