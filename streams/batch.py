"""One batch of input messages in, everything to publish and store out.

A plain function over plain data, so the agent only moves bytes between Kafka,
the table and this step. The step decides, for every message, exactly one fate:
scored, duplicate, re-keyed or dead-lettered; nothing is dropped silently.

Routing invariant: user ``U`` is only ever scored from partition
``P(U) = murmur2(utf8(U)) % n`` (aiokafka's and Kafka's default partitioner) of the
input topic or of the re-key topic. The table's changelog record for ``U`` lands
in the same partition number, so with Faust's co-partitioned assignment one
worker owns the input, re-key and changelog partitions of ``U``: its state is
always local, loaded once and stored once per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka.partitioner import murmur2

from detectors import ScoringEngine, UserState
from schemas import AnomalyEvent, DeadLetter, InvalidEvent, TokenUsageEvent, parse_event


def partition_for(user_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the key ``utf8(user_id)``."""
    return int(murmur2(user_id.encode()) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True, slots=True)
class Received:
    """One message as read from Kafka, value untouched."""

    key: bytes | None
    value: bytes
    topic: str
    partition: int
    offset: int


@dataclass(slots=True)
class BatchOutcome:
    """What one batch asks the agent to publish and store."""

    alerts: list[AnomalyEvent] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    rekeyed: list[tuple[bytes, bytes]] = field(default_factory=list)
    """(key = utf8 user id, original value) for the re-key topic."""
    states: dict[bytes, bytes] = field(default_factory=dict)
    """utf8 user id -> encoded state, one entry per user scored in the batch."""
    scored: int = 0
    duplicates: int = 0


def process_batch(
    messages: Iterable[Received],
    engine: ScoringEngine,
    load_state: Callable[[bytes], bytes | None],
    input_topic: str,
    partitions: int,
    detected_at: datetime,
) -> BatchOutcome:
    """Parse, route and score ``messages``; per user, state is loaded and encoded once.

    ``load_state(utf8 user id)`` returns the stored state, or None for a new user.
    Messages from a topic other than ``input_topic`` (the re-key topic) are always
    scored: they were sent to the right partition, and re-routing them could loop.
    """
    outcome = BatchOutcome()
    by_user: dict[str, list[TokenUsageEvent]] = {}
    for message in messages:
        try:
            event = parse_event(message.value)
        except InvalidEvent as exc:
            outcome.dead_letters.append(dead_letter(message, exc, detected_at))
            continue
        if (
            message.topic == input_topic
            and partition_for(event.user_id, partitions) != message.partition
        ):
            outcome.rekeyed.append((event.user_id.encode(), message.value))
            continue
        by_user.setdefault(event.user_id, []).append(event)

    for user_id, events in by_user.items():
        key = user_id.encode()
        raw = load_state(key)
        state = engine.new_state(user_id) if raw is None else UserState.from_bytes(raw)
        for event in events:
            result = engine.score_event(state, event, detected_at)
            if result.duplicate:
                outcome.duplicates += 1
            else:
                outcome.scored += 1
                outcome.alerts.extend(result.alerts)
        outcome.states[key] = state.to_bytes()
    return outcome


def dead_letter(message: Received, error: InvalidEvent, at: datetime) -> DeadLetter:
    """The dead letter for ``message``: original bytes, key, reason and where it came from."""
    return DeadLetter(
        reason=error.reason,
        error_type=error.error_type,
        original_base64=DeadLetter.encode_bytes(message.value) or "",
        original_key_base64=DeadLetter.encode_bytes(message.key),
        source_topic=message.topic,
        source_partition=message.partition,
        source_offset=message.offset,
        dead_lettered_at=at,
    )
