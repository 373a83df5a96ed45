"""The worker and ``replay`` raise the same budget_burn alerts, updates included, with
the same costs, dates and sentences, for a month whose team accelerates mid-month."""

from __future__ import annotations

import json

import pytest
from worker_harness import encode, producer, read_topic

from tokenradar.lab.simulation.spend_scenario import SpendTeam, spend_scenario
from tokenradar.replay import replay_file
from tokenradar.schemas import AnomalyEvent
from tokenradar.schemas.config_file import load_config

pytestmark = pytest.mark.integration


def test_worker_budget_burn_equals_replay(broker_url, topics, start_worker, tmp_path):
    scenario = spend_scenario(seed=5, teams=(
        SpendTeam("steady", people=2), SpendTeam("accelerating", people=2, accelerate_on=12)))
    events_path, replay_alerts = tmp_path / "events.jsonl", tmp_path / "alerts.jsonl"
    events_path.write_text("".join(json.dumps(event) + "\n" for event in scenario.events))
    config_path = tmp_path / "budgets.toml"
    config_path.write_text("[budgets.teams]\n" + "".join(
        f'"{team}" = {budget}\n' for team, budget in scenario.budgets.items()))
    summary = replay_file(events_path, replay_alerts, config=load_config(config_path))
    expected = [AnomalyEvent.model_validate_json(line)
                for line in replay_alerts.read_text().splitlines()]
    burns = [alert for alert in expected if alert.kind == "budget_burn"]
    assert burns and {alert.user_id for alert in burns} == {"team:accelerating"}
    assert len(burns) > 1, "the forecast moves as the month goes on: updates, same alert_id"

    send = producer(broker_url)
    for event in scenario.events:
        send.send(topics.input, key=str(event["team"]).encode(), value=encode(event))
    send.flush()
    send.close()
    worker = start_worker(topics, config=config_path)
    worker.wait_for_events("scored", summary.events)
    records = read_topic(broker_url, topics.alerts, count=len(expected))
    published = [AnomalyEvent.model_validate_json(record.value) for record in records]

    def comparable(alerts: list[AnomalyEvent]) -> list[str]:
        """The whole message but the processing time, which only the worker has."""
        return sorted(alert.model_copy(update={"detected_at": alert.event_time})
                      .model_dump_json() for alert in alerts)

    assert comparable(published) == comparable(expected)
