"""Producing token-usage events to a topic, keyed by routing key (team, else user id)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from kafka import KafkaProducer

from tokenradar.schemas.settings import KafkaSecurity
from tokenradar.streams.security import kafka_python_options


def message_key(event: Mapping[str, object]) -> bytes:
    """The key to produce an event with: its routing key, the team, else the user id.

    That is where the worker scores the event, so keyed so, no event needs the
    worker's re-keying hop.
    """
    return str(event.get("team") or event["user_id"]).encode()


def produce_events(bootstrap: list[str], topic: str, events: Iterable[Mapping[str, object]],
                   security: KafkaSecurity | None = None) -> int:
    """Send each event as compact JSON keyed by :func:`message_key`; return how many.

    Flushes before returning, so every counted event has reached the broker.
    """
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        batch_size=256 * 1024,
        acks=1,
        client_id="tokenradar-publish",
        **kafka_python_options(security or KafkaSecurity()),
    )
    count = 0
    try:
        for event in events:
            value = json.dumps(event, separators=(",", ":")).encode()
            producer.send(topic, key=message_key(event), value=value)
            count += 1
        producer.flush()
    finally:
        producer.close()
    return count
