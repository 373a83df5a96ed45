"""The batch step over hostile messages (hypothesis chooses the seed and the batching):
every message gets its due fate, exactly once, and no output carries text from a field
outside the contract, not even the stored states (the changelog)."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenradar.detectors import ScoringEngine
from tokenradar.lab.hostile import CANARY, DUPLICATE, SCORED, HostileProducer
from tokenradar.schemas import DeadLetter, DetectorConfig
from tokenradar.streams.batch import Received, flush_routes, partition_for, process_batch

PARTITIONS = 3
INPUT, REKEY = "usage", "usage-by-user"


def _partition(key: bytes | None, rng: random.Random) -> int:
    """Where a producer's partitioner puts the key: murmur2 of it, or anywhere."""
    if not key:
        return rng.randrange(PARTITIONS)
    try:
        return partition_for(key.decode(), PARTITIONS)
    except UnicodeDecodeError:
        return rng.randrange(PARTITIONS)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.integers(1, 60))
def test_every_hostile_message_is_scored_dropped_or_dead_lettered_as_due(
        seed: int, batch_size: int) -> None:
    rng = random.Random(seed)
    hostile = list(HostileProducer(seed, users=12, huge_every=97, huge_bytes=200_000)
                   .messages(250))
    engine = ScoringEngine(DetectorConfig())
    states: dict[bytes, bytes] = {}
    now = datetime.now(UTC)
    pending = [Received(m.key, m.value, INPUT, _partition(m.key, rng), offset)
               for offset, m in enumerate(hostile)]
    totals: Counter[str] = Counter()
    dead: Counter[str] = Counter()
    published: list[str] = []
    routes: set[str] = set()
    rekey_offset = 0
    while pending:
        batch, pending = pending[:batch_size], pending[batch_size:]
        outcome = process_batch(batch, engine, states.get, INPUT, PARTITIONS, now)
        for rekeyed in outcome.rekeyed:  # the re-key topic: read back later, as a worker does
            pending.append(Received(rekeyed.key, rekeyed.value, REKEY,
                                    partition_for(rekeyed.key.decode(), PARTITIONS),
                                    rekey_offset, rekeyed.origin, rekeyed.origin_offset,
                                    rekeyed.origin_key))
            rekey_offset += 1
        states.update(outcome.states)
        routes |= set(outcome.held)
        totals.update(scored=outcome.scored + outcome.late, duplicate=outcome.duplicates)
        dead.update(letter.error_type for letter in outcome.dead_letters)
        published += [a.model_dump_json() for a in outcome.alerts]
        published += [d.model_dump_json() for d in outcome.dead_letters]
        for letter in outcome.dead_letters:  # the producer's coordinates, never internal ones
            produced = hostile[letter.source_offset]
            assert letter.source_topic == INPUT
            assert letter.original_sha256 == hashlib.sha256(produced.value).hexdigest()
            assert letter.original_key_base64 == DeadLetter.encode_key(produced.key)
    flushed = flush_routes(sorted(routes), engine, states.get, PARTITIONS, now)
    states.update(flushed.states)
    totals.update(scored=flushed.scored + flushed.late, duplicate=flushed.duplicates)
    published += [a.model_dump_json() for a in flushed.alerts]
    assert not flushed.dead_letters

    due = Counter(m.fate for m in hostile)
    assert totals[SCORED] == due.pop(SCORED, 0)
    assert totals[DUPLICATE] == due.pop(DUPLICATE, 0)  # a seed may draw no duplicate
    assert dead == due
    assert totals.total() + dead.total() == len(hostile)
    assert not [text for text in published if CANARY in text]
    assert not [key for key, raw in states.items() if CANARY.encode() in raw]
