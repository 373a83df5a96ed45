"""One batch of input messages in, everything to publish and store out.

A plain function over plain data, so the agent only moves bytes between Kafka,
the table and this step. The step decides, for every message, exactly one fate:
scored, duplicate, re-keyed or dead-lettered; nothing is dropped silently.

Routing invariant: an event is scored under its routing key ``R`` (its team, or its
user id when it has none; see :func:`detectors.routing_key`), and only ever from
partition ``P(R) = murmur2(utf8(R)) % n`` (aiokafka's and Kafka's default
partitioner) of the input topic or of the re-key topic. The table's changelog
records of ``R`` (the team's state, its members' states) land in the same partition
number, so with Faust's co-partitioned assignment one worker owns the input, re-key
and changelog partitions of ``R``: a team and its members are scored in one place,
in one order, as in replay; each state is loaded once and stored once per batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka.partitioner import murmur2

from detectors import ScoringEngine, TeamState, UserState, routing_key
from schemas import AnomalyEvent, DeadLetter, InvalidEvent, TokenUsageEvent, parse_event


def partition_for(routing: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the key ``utf8(routing)``."""
    return int(murmur2(routing.encode()) & 0x7FFFFFFF) % partitions


KEY_SEPARATOR = b"\x1f"


def user_state_key(routing: str, user_id: str) -> bytes:
    """Table key of a user's state: routing key, separator, user id."""
    return routing.encode() + KEY_SEPARATOR + user_id.encode()


def team_state_key(team: str) -> bytes:
    """Table key of a team's state: the team (its routing key) and the separator."""
    return team.encode() + KEY_SEPARATOR


def routing_of(state_key: bytes) -> str:
    """The routing key a table key belongs to, which decides its changelog partition."""
    return state_key.split(KEY_SEPARATOR, 1)[0].decode()


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
    """Every alert to publish, in order: new incidents and escalations of open ones."""
    new_alerts: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(kind, severity) -> alerts that opened an incident (a new ``alert_id``)."""
    escalations: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(kind, severity) -> alerts that re-published an open incident, more severe."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    rekeyed: list[tuple[bytes, bytes]] = field(default_factory=list)
    """(key = utf8 routing key, original value) for the re-key topic."""
    states: dict[bytes, bytes] = field(default_factory=dict)
    """Table key -> encoded state, one entry per user and team scored in the batch."""
    scored: int = 0
    duplicates: int = 0


class DecodedStates:
    """The states this worker last stored, kept decoded between batches.

    A state whose stored bytes are still exactly the ones written from it is reused
    instead of decoded again: the codec is exact, so the object is what decoding would
    give. Anything else (a new worker, a partition that moved and came back changed)
    is decoded afresh, so this only saves time, never changes a result.
    """

    def __init__(self) -> None:
        self._entries: dict[bytes, tuple[bytes, UserState | TeamState]] = {}

    def user(self, key: bytes, raw: bytes | None, engine: ScoringEngine,
             user_id: str) -> UserState:
        state = self._reused(key, raw)
        if isinstance(state, UserState):
            return state
        return engine.new_state(user_id) if raw is None else UserState.from_bytes(raw)

    def team(self, key: bytes, raw: bytes | None, engine: ScoringEngine, team: str
             ) -> TeamState:
        state = self._reused(key, raw)
        if isinstance(state, TeamState):
            return state
        return engine.new_team_state(team) if raw is None else TeamState.from_bytes(raw)

    def remember(self, key: bytes, raw: bytes, state: UserState | TeamState) -> None:
        self._entries[key] = (raw, state)

    def forget(self) -> None:
        """Drop every state: after a rebalance, those of partitions this worker no longer
        holds would otherwise stay in memory for good."""
        self._entries.clear()

    def _reused(self, key: bytes, raw: bytes | None) -> UserState | TeamState | None:
        entry = self._entries.get(key)
        if raw is None or entry is None or entry[0] != raw:
            return None
        return entry[1]


def process_batch(
    messages: Iterable[Received],
    engine: ScoringEngine,
    load_state: Callable[[bytes], bytes | None],
    input_topic: str,
    partitions: int,
    detected_at: datetime,
    decoded: DecodedStates | None = None,
) -> BatchOutcome:
    """Parse, route and score ``messages``; each state is loaded and encoded once.

    ``load_state(table key)`` returns the stored state, or None for a new user or team.
    Messages from a topic other than ``input_topic`` (the re-key topic) are always
    scored: they were sent to the right partition, and re-routing them could loop.
    ``decoded`` carries the worker's decoded states from one batch to the next.
    """
    decoded = DecodedStates() if decoded is None else decoded
    outcome = BatchOutcome()
    by_route: dict[str, list[tuple[TokenUsageEvent, Received]]] = {}
    for message in messages:
        try:
            event = parse_event(message.value)
        except InvalidEvent as exc:
            outcome.dead_letters.append(dead_letter(message, exc, detected_at))
            continue
        route = routing_key(event)
        if message.topic == input_topic and partition_for(route, partitions) != message.partition:
            outcome.rekeyed.append((route.encode(), message.value))
            continue
        by_route.setdefault(route, []).append((event, message))

    for route, received in by_route.items():
        team = None
        if any(event.team == route for event, _ in received):  # the route is a team's
            team_key = team_state_key(route)
            team = decoded.team(team_key, load_state(team_key), engine, route)
        users: dict[str, UserState] = {}
        for event, message in received:
            state = users.get(event.user_id)
            if state is None:
                key = user_state_key(route, event.user_id)
                state = users[event.user_id] = decoded.user(key, load_state(key), engine,
                                                            event.user_id)
            try:
                result = engine.score_event(
                    state, event, detected_at, team_state=team if event.team is not None else None
                )
            except Exception as exc:  # noqa: BLE001  # one bad event must not stop the stream
                # A bug in a detector, not in the event: the event is kept, with the error,
                # where an operator looks, and the worker goes on with the next one.
                failure = InvalidEvent("scoring_error", f"the detectors failed: {exc!r}")
                outcome.dead_letters.append(dead_letter(message, failure, detected_at))
                continue
            if result.duplicate:
                outcome.duplicates += 1
            else:
                outcome.scored += 1
                outcome.alerts.extend(result.alerts)
                for alert in result.alerts:
                    tally = outcome.escalations if result.escalates(alert) else outcome.new_alerts
                    tally[alert.kind, alert.severity] += 1
        stored: list[tuple[bytes, UserState | TeamState]] = [
            (user_state_key(route, user_id), state) for user_id, state in users.items()]
        if team is not None:
            stored.append((team_state_key(route), team))
        for key, scored_state in stored:
            raw = scored_state.to_bytes()
            outcome.states[key] = raw
            decoded.remember(key, raw, scored_state)
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
