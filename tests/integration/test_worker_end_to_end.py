"""A worker on a real broker: alerts out, dead letters out, every message accounted for."""

from __future__ import annotations

import pytest
from worker_harness import (
    PARTITIONS,
    encode,
    huge_request,
    producer,
    read_topic,
    steady_usage,
)

from tokenradar.schemas import AnomalyEvent, DeadLetter
from tokenradar.streams.batch import partition_for

pytestmark = pytest.mark.integration

TEAM = "platform"
"""The team of every event of steady_usage: their routing key."""
MALFORMED = {
    b"this is not json": "not_json",
    b'{"event_id": "e1", "user_id": "u"}': "schema",
    b"\xff\xfe{not utf-8": "not_utf8",
    b"[1, 2, 3]": "not_an_object",
}


def test_spike_alerts_malformed_dead_lettered_and_every_message_counted(
    broker_url, topics, start_worker
):
    users = [f"user-{i}" for i in range(5)]
    send = producer(broker_url)
    produced = rekeyed = 0
    # Keyed by routing key (the team, as the README recommends): scored where they land.
    route = TEAM.encode()
    for user in users:
        for event in steady_usage(user):
            send.send(topics.input, key=route, value=encode(event))
            produced += 1
    # user-3 arrives unkeyed and user-4 keyed otherwise, both on a partition that is not
    # their team's: the worker must forward them to the re-key topic, then score them.
    for event in steady_usage("user-3", seed=1)[:5]:
        event["event_id"] += "-unkeyed"
        wrong = (partition_for(TEAM, PARTITIONS) + 1) % PARTITIONS
        send.send(topics.input, key=None, value=encode(event), partition=wrong)
        produced += 1
        rekeyed += 1
    for event in steady_usage("user-4", seed=1)[:5]:
        event["event_id"] += "-wrong-key"
        wrong = (partition_for(TEAM, PARTITIONS) + 2) % PARTITIONS
        send.send(topics.input, key=b"someone-else", value=encode(event), partition=wrong)
        produced += 1
        rekeyed += 1
    duplicate = steady_usage("user-1")[10]
    send.send(topics.input, key=route, value=encode(duplicate))
    for raw in MALFORMED:
        send.send(topics.input, key=b"user-2", value=raw)
    send.send(topics.input, key=route, value=encode(huge_request("user-0")))
    produced += 1 + len(MALFORMED) + 1  # duplicate, malformed, spike
    send.flush()
    send.close()

    worker = start_worker(topics)
    scored = produced - 1 - len(MALFORMED)
    worker.wait_for_scored(scored)  # users sent one after the other: most are late
    worker.wait_for_events("dead_lettered", len(MALFORMED))
    alerts = read_topic(broker_url, topics.alerts, count=1)
    letters = read_topic(broker_url, topics.dlq, count=len(MALFORMED))

    assert worker.scored() == scored
    assert worker.events("duplicate") == 1
    assert worker.events("rekeyed") == rekeyed
    assert worker.events("dead_lettered") == len(MALFORMED)

    assert len(alerts) == 1, [a.value[:140] for a in alerts]
    alert = AnomalyEvent.model_validate_json(alerts[0].value)
    assert alerts[0].key == b"user-0"
    assert (alert.user_id, alert.kind, alert.team) == ("user-0", "spike", "platform")
    assert alert.event_ids[-1] == "user-0-huge"
    assert alert.observed > alert.expected > 0
    assert alert.explanation and alert.config_version and alert.alert_id

    dead = [DeadLetter.model_validate_json(record.value) for record in letters]
    assert {letter.original_sha256: letter.error_type for letter in dead} == {
        DeadLetter.sha256(raw): error_type for raw, error_type in MALFORMED.items()}
    for letter in dead:
        assert letter.reason
        assert letter.source_topic == topics.input
        assert letter.original_key_base64 == DeadLetter.encode_key(b"user-2")
