"""A running worker's ``/metrics``, parsed as Prometheus parses it, agrees with what it did:
messages scored, duplicates, dead letters, alerts once per ``alert_id``, escalations apart;
checked against what the alerts and dead-letter topics hold and a replay of the same file.
"""

from __future__ import annotations

import json
from collections import Counter
from urllib.request import urlopen

import pytest
from prometheus_client.parser import text_string_to_metric_families
from worker_harness import encode, producer, read_topic

from tokenradar.lab.process import wait_until
from tokenradar.lab.simulation import SimulationSpec, simulate
from tokenradar.replay import replay_file
from tokenradar.schemas import AnomalyEvent, DeadLetter

pytestmark = pytest.mark.integration

MALFORMED = {b"{not json": "not_json", b'{"event_id": "e1", "user_id": "u"}': "schema",
             b"\xff\xfe{": "not_utf8"}


def _scrape(port: int) -> dict[str, Counter[tuple[tuple[str, str], ...]]]:
    """Counter samples by family name, then by their labels, from the text exposition."""
    text = urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    families: dict[str, Counter[tuple[tuple[str, str], ...]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                samples = families.setdefault(sample.name, Counter())
                samples[tuple(sorted(sample.labels.items()))] += sample.value
    return families


def test_metrics_count_what_the_worker_did(broker_url, topics, start_worker, tmp_path):
    events, _labels = simulate(SimulationSpec(users=24, teams=3, days=12, seed=3,
                                             incidents_per_kind=1, shifted_teams=1,
                                             duplicate_share=0.01))
    events_path = tmp_path / "events.jsonl"
    events_path.write_text("".join(json.dumps(event) + "\n" for event in events))
    replayed = replay_file(events_path, tmp_path / "alerts.jsonl")
    assert replayed.duplicates and replayed.escalations, "the file should exercise both"

    send = producer(broker_url)
    for event in events:
        route = event.get("team") or event["user_id"]
        send.send(topics.input, key=str(route).encode(), value=encode(event))
    for raw in MALFORMED:
        send.send(topics.input, key=b"someone", value=raw)
    send.flush()
    send.close()
    worker = start_worker(topics)
    scored = replayed.events - replayed.duplicates - replayed.late
    worker.wait_for_events("scored", scored, timeout_s=120)
    worker.wait_for_events("dead_lettered", len(MALFORMED))

    published = [AnomalyEvent.model_validate_json(record.value) for record in
                 read_topic(broker_url, topics.alerts, replayed.alerts + replayed.escalations)]
    letters = [DeadLetter.model_validate_json(record.value)
               for record in read_topic(broker_url, topics.dlq, len(MALFORMED))]
    first_of_id: dict[str, AnomalyEvent] = {}
    for alert in published:  # an incident's alerts share its user's partition: in order
        first_of_id.setdefault(alert.alert_id, alert)
    escalations = [alert for alert in published if first_of_id[alert.alert_id] is not alert]
    # Counters are bumped after the batch's sends: wait until the last one is counted.
    wait_until(lambda: sum(_scrape(worker.metrics_port)
                         .get("tokenradar_alert_escalations_total", {}).values())
             >= len(escalations), 30, worker.describe)

    metrics = _scrape(worker.metrics_port)
    outcomes = {dict(labels)["outcome"]: value
                for labels, value in metrics["tokenradar_events_total"].items()}
    assert outcomes == {"scored": scored, "late": replayed.late,
                        "duplicate": replayed.duplicates, "rekeyed": 0,
                        "dead_lettered": len(MALFORMED)}
    assert metrics["tokenradar_dead_letters_total"] == Counter(
        (("error_type", letter.error_type),) for letter in letters)
    assert sorted(letter.error_type for letter in letters) == sorted(MALFORMED.values())

    def by_kind_and_severity(alerts: list[AnomalyEvent]) -> Counter[tuple[tuple[str, str], ...]]:
        return Counter((("kind", a.kind), ("severity", a.severity)) for a in alerts)

    assert metrics["tokenradar_alerts_total"] == by_kind_and_severity(list(first_of_id.values()))
    assert metrics["tokenradar_alert_escalations_total"] == by_kind_and_severity(escalations)
    assert (len(first_of_id), len(escalations)) == (replayed.alerts, replayed.escalations)
    assert Counter(a.kind for a in first_of_id.values()) == replayed.alerts_by_kind

    log = worker.log_path.read_text()
    assert "\x1b[" not in log, "a log written to a file must carry no terminal escape codes"
    assert any("[INFO]" in line and "tokenradar worker ready" in line
               for line in log.splitlines())
