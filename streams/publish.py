"""Producing token-usage events to a topic, keyed by user id as the contract recommends."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from kafka import KafkaProducer


def produce_events(bootstrap: list[str], topic: str, events: Iterable[Mapping[str, object]]) -> int:
    """Send each event as compact JSON with key = utf8(user_id); return how many were sent.

    Flushes before returning, so every counted event has reached the broker.
    """
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        batch_size=256 * 1024,
        acks=1,
        client_id="tokenradar-publish",
    )
    count = 0
    try:
        for event in events:
            value = json.dumps(event, separators=(",", ":")).encode()
            producer.send(topic, key=str(event["user_id"]).encode(), value=value)
            count += 1
        producer.flush()
    finally:
        producer.close()
    return count
