"""Under a pseudonym key the worker publishes replay's alerts (same key, same alert ids),
and no topic it writes (alerts, dead letters, the re-key topic, the state's changelog)
holds a real user id."""

from __future__ import annotations

import json

import pytest
from worker_harness import encode, producer, read_topic

from tokenradar.lab.simulation import SimulationSpec, simulate
from tokenradar.replay import replay_file
from tokenradar.schemas import AnomalyEvent
from tokenradar.schemas.pseudonyms import PSEUDONYM_PREFIX, Pseudonymiser

pytestmark = pytest.mark.integration

KEY = "integration-test-pseudonym-key"


def test_worker_under_pseudonyms_equals_replay_and_writes_no_user_id(
        broker_url, topics, start_worker, tmp_path):
    events, _ = simulate(SimulationSpec(users=16, teams=2, days=10, seed=3,
                                        incidents_per_kind=1, shifted_teams=0))
    solo = events[0]["user_id"]  # one person without a team: routed by the pseudonym
    for event in events:
        if event["user_id"] == solo:
            event.pop("team", None)
    users = {str(event["user_id"]) for event in events}
    events_path = tmp_path / "events.jsonl"
    events_path.write_text("".join(json.dumps(event) + "\n" for event in events))
    names = Pseudonymiser(KEY.encode())
    summary = replay_file(events_path, tmp_path / "alerts.jsonl", pseudonymiser=names)
    expected = [AnomalyEvent.model_validate_json(line)
                for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert expected and all(a.user_id.startswith((PSEUDONYM_PREFIX, "team:")) for a in expected)

    send = producer(broker_url)
    for event in events:  # keyed as a producer does: team, else the real user id
        send.send(topics.input, key=str(event.get("team") or event["user_id"]).encode(),
                  value=encode(event))
    broken = {**events[1], "input_tokens": "many"}
    send.send(topics.input, key=str(broken["user_id"]).encode(), value=encode(broken))
    send.flush()
    send.close()
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    worker = start_worker(topics, extra_options={"pseudonym-key-file": str(key_file)})
    worker.wait_for_events("scored", summary.events)
    published = [AnomalyEvent.model_validate_json(record.value)
                 for record in read_topic(broker_url, topics.alerts, count=len(expected))]

    def comparable(alerts: list[AnomalyEvent]) -> list[tuple[str, str, str, str]]:
        return sorted((a.alert_id, a.user_id, a.kind, a.event_time.isoformat()) for a in alerts)

    assert comparable(published) == comparable(expected)
    assert worker.events("rekeyed") > 0 and worker.events("dead_lettered") == 1
    written = {
        "alerts": read_topic(broker_url, topics.alerts, count=len(expected)),
        "dead letters": read_topic(broker_url, topics.dlq, count=1),
        "re-key topic": read_topic(broker_url, f"{topics.group}-{topics.input}-by-user", 1),
        "changelog": read_topic(broker_url, f"{topics.group}-user-state-changelog", 1),
    }
    for where, records in written.items():
        assert records, where
        blob = b"\n".join((record.key or b"") + b" " + (record.value or b"")
                          for record in records)
        leaked = sorted(user for user in users if user.encode() in blob)
        assert not leaked, f"{where} holds user ids {leaked[:3]}"
    assert KEY not in worker.log_path.read_text(errors="replace")  # nor logs the key
