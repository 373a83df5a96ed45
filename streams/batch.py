"""One batch of input messages in, everything to publish and store out.

A plain function over plain data, so the agent only moves bytes between Kafka,
the table and this step. The step decides, for every message, exactly one fate:
scored (in order, or late), duplicate, re-keyed or dead-lettered; nothing is dropped
silently. A message may wait in its routing key's reorder buffer first, stored in the
table like any state, until a later batch or :func:`flush_routes` releases it.

Routing invariant: an event is scored under its routing key ``R`` (its team, or its
user id when it has none; see :func:`tokenradar.detectors.routing_key`), and only ever from
partition ``P(R) = murmur2(utf8(R)) % n`` (aiokafka's and Kafka's default
partitioner) of the input topic or of the re-key topic. The table's changelog
records of ``R`` (the team's state, its members' states, its reorder buffer) land in
the same partition number, so with Faust's co-partitioned assignment one worker owns
the input, re-key and changelog partitions of ``R``: a team and its members are
scored in one place; each state is loaded once and stored once per batch.

Verdicts (``tokenradar feedback``) come keyed by ``alert_id`` on the feedback topic:
each is forwarded once through the re-key topic, keyed by its routing key and marked
by a header, and filed there in the routing key's verdict book, a state record of its
own in the same changelog partition (:mod:`tokenradar.detectors.verdicts`).

Ordering: an input message keyed by its routing key on ``P(R)`` is scored from there;
any other (unkeyed, keyed otherwise, or partitioned otherwise) goes through the re-key
topic, with the input partition it was read from as its *origin* (a header). Each
partition delivers ``R``'s events in the order they were produced, so the reorder
buffer (:mod:`tokenradar.detectors.reorder`), which waits for every origin, releases them in
(event time, event id) order however the partitions' fetches interleave: the order
``replay`` scores them in.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from itertools import islice
from typing import Protocol, TypeVar

from aiokafka.partitioner import murmur2

from tokenradar.detectors import ScoringEngine, TeamState, UserState, routing_key
from tokenradar.detectors.reorder import Released, ReorderBuffer, held_text
from tokenradar.detectors.retention import StateRetention
from tokenradar.detectors.state import LIVE_STATES
from tokenradar.detectors.verdicts import VerdictBook
from tokenradar.schemas import (
    AnomalyEvent,
    DeadLetter,
    InvalidEvent,
    TokenUsageEvent,
    parse_event,
)
from tokenradar.schemas.events import DEFAULT_LIMITS, InputLimits
from tokenradar.schemas.feedback import InvalidVerdict, parse_verdict
from tokenradar.schemas.pseudonyms import Pseudonymiser


@lru_cache(maxsize=4096)  # murmur2 in Python costs more than the rest of routing an event
def partition_for(routing: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the key ``utf8(routing)``."""
    return int(murmur2(routing.encode()) & 0x7FFFFFFF) % partitions


KEY_SEPARATOR = b"\x1f"
BUFFER_SUFFIX = b"\x00reorder"
VERDICTS_SUFFIX = b"\x00verdicts"
ORIGIN_HEADER = "tokenradar-origin"
"""Header of a re-keyed message: the input partition it was read from."""
VERDICT_HEADER = "tokenradar-verdict"
"""Header of a verdict forwarded to the re-key topic, keyed by its routing key."""
ORIGIN_OFFSET_HEADER = "tokenradar-origin-offset"
"""Header of a re-keyed message: its offset in that input partition, which a message
forwarded again keeps (its offset in the re-key topic does not): see
:meth:`~tokenradar.detectors.reorder.ReorderBuffer.first_delivery`."""
ORIGIN_KEY_HEADER = "tokenradar-origin-key"
"""Header of a re-keyed message: the producer's key (absent for an unkeyed message)."""
DIRECT_ORIGIN = "direct"
"""Origin of the events scored where they were read: keyed by their routing key."""
INPUT_ORIGINS = tuple(str(partition) for partition in range(4096))
"""Origins of re-keyed events: the input partitions. Once one forwards to a partition,
the others are expected there too (unkeyed producers spread over all of them)."""


def user_state_key(routing: str, user_id: str) -> bytes:
    """Table key of a user's state: routing key, separator, user id."""
    return routing.encode() + KEY_SEPARATOR + user_id.encode()


def team_state_key(team: str) -> bytes:
    """Table key of a team's state: the team (its routing key) and the separator."""
    return team.encode() + KEY_SEPARATOR


def buffer_state_key(routing: str) -> bytes:
    """Table key of a routing key's reorder buffer."""
    return routing.encode() + KEY_SEPARATOR + BUFFER_SUFFIX


def verdicts_state_key(routing: str) -> bytes:
    """Table key of a routing key's verdict book."""
    return routing.encode() + KEY_SEPARATOR + VERDICTS_SUFFIX


def buffered_routing(state_key: bytes) -> str | None:
    """The routing key whose reorder buffer ``state_key`` is, else None."""
    routing, _, rest = state_key.partition(KEY_SEPARATOR)
    return routing.decode() if rest == BUFFER_SUFFIX else None


def is_user_state_key(state_key: bytes) -> bool:
    """A user's state (not a team's, a reorder buffer or a verdict book)."""
    _, _, rest = state_key.partition(KEY_SEPARATOR)
    return bool(rest) and rest not in (BUFFER_SUFFIX, VERDICTS_SUFFIX)


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
    origin: int | None = None
    """Re-keyed messages: the input partition the message was first read from."""
    origin_offset: int | None = None
    """Re-keyed messages: its offset there."""
    origin_key: bytes | None = None
    """Re-keyed messages: the key the producer gave it."""
    verdict: bool = False
    """A verdict forwarded to its routing key's partition (the verdict header)."""

    def as_produced(self, input_topic: str) -> Received:
        """The message where its producer put it: for a re-keyed one, the input topic,
        partition, offset and key it was first read with (what a dead letter names)."""
        if self.origin is None or self.origin_offset is None:
            return self
        return Received(self.origin_key, self.value, input_topic, self.origin,
                        self.origin_offset)


@dataclass(frozen=True, slots=True)
class Rekeyed:
    """A message to forward: key = utf8 routing key; an input message with the input
    partition, offset and key it came from as its origin, or a verdict (``origin``
    None)."""

    key: bytes
    value: bytes
    origin: int | None
    origin_offset: int = -1
    origin_key: bytes | None = None
    verdict: bool = False

    def headers(self) -> dict[str, bytes]:
        """The headers that carry its origin (or its being a verdict) through the re-key
        topic."""
        if self.verdict:
            return {VERDICT_HEADER: b"1"}
        headers = {ORIGIN_HEADER: str(self.origin).encode(),
                   ORIGIN_OFFSET_HEADER: str(self.origin_offset).encode()}
        if self.origin_key is not None:
            headers[ORIGIN_KEY_HEADER] = self.origin_key
        return headers


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
    rekeyed: list[Rekeyed] = field(default_factory=list)
    states: dict[bytes, bytes] = field(default_factory=dict)
    """Table key -> encoded state, one entry per user, team and buffer touched; empty
    when the worker keeps them (:class:`LiveStates`) to write them later."""
    held: dict[str, int] = field(default_factory=dict)
    """Routing key -> events its buffer still holds, for every routing key touched."""
    user_times: dict[bytes, float] = field(default_factory=dict)
    """User state key -> the event time it last learned, for each user state stored."""
    unpriced_models: list[str] = field(default_factory=list)
    """Models first priced at the price table's default in this batch (each once per
    worker): logged and counted."""
    scored: int = 0
    expired: int = 0
    """Users whose state was stale at their event: they started afresh."""
    late: int = 0
    """Scored after later events of their routing key: beyond the reorder window."""
    duplicates: int = 0
    """Events not scored again: the same ``event_id`` as a scored one, or the same input
    message read again (after a crash or a rebalance)."""
    verdicts: Counter[str] = field(default_factory=Counter)
    """Verdicts filed (new, or replacing an earlier one on their alert), by value."""
    silenced: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(kind, reason) -> alerts a verdict or a calendar window silenced."""


class Stored(Protocol):
    """A state the table stores: a user's, a team's, a reorder buffer, a verdict book."""

    def to_bytes(self) -> bytes: ...


S = TypeVar("S", bound=Stored)


class LiveStates:
    """The states of the routing keys this worker scores, decoded once and kept while
    they stay here; the changed ones are encoded and written once per write, not per
    batch.

    The worker is the only writer of its partitions' states, so a state it holds is
    what decoding its stored bytes would give, plus what it scored since the last
    write (:meth:`take_changed`). A rebalance may move partitions: the changed states
    are written first, then all are forgotten (:meth:`forget`) and decoded afresh
    from the table when next needed. This only saves time, never changes a result.

    Once written, only the ``live`` most recently changed stay decoded: the table holds
    every state as bytes, and a decoded one weighs about six times as much.
    """

    def __init__(self, live: int = LIVE_STATES) -> None:
        self.live = live
        self._held: dict[bytes, Stored] = {}
        """Most recently changed last."""
        self._changed: dict[bytes, Stored] = {}

    def get(self, key: bytes) -> Stored | None:
        return self._held.get(key)

    def keep(self, key: bytes, state: Stored) -> None:
        """Hold a state as stored (decoded from the table, or new and not stored yet)."""
        self._held[key] = state

    def change(self, key: bytes, state: Stored) -> None:
        """Hold a state that scoring changed: written by the next :meth:`take_changed`."""
        self._held.pop(key, None)
        self._held[key] = self._changed[key] = state

    def take_changed(self) -> dict[bytes, bytes]:
        """Table key -> encoded state, for every state changed since the last call; then
        only the ``live`` most recently changed stay decoded (the others are stored)."""
        changed = {key: state.to_bytes() for key, state in self._changed.items()}
        self._changed.clear()
        for key in list(islice(self._held, max(0, len(self._held) - self.live))):
            del self._held[key]
        return changed

    def has_changed(self) -> bool:
        return bool(self._changed)

    def drop(self, key: bytes) -> None:
        """Forget one state: it was deleted from the table."""
        self._held.pop(key, None)
        self._changed.pop(key, None)

    def forget(self) -> None:
        """Drop every state: after a rebalance, those of partitions this worker no longer
        holds would otherwise stay in memory for good (and their changes be written)."""
        self._held.clear()
        self._changed.clear()

    def __len__(self) -> int:
        return len(self._held)


class BatchPace:
    """How many of a fetch's messages to score before sending what they gave: about
    ``seconds`` of work at the recent cost per message, and at most ``most``.

    A fetch can hold thousands of messages (all that arrived while the previous one was
    scored); its alerts leave only once their batch is scored, so a batch of 1,000
    (150 ms) would hold back the alert of its first event that long. Sized by time, a
    batch stays short however slow the machine, and the alerts go out as they come.

    >>> pace = BatchPace(most=1000, seconds=0.02)
    >>> pace.size()  # nothing measured yet: a first batch of one
    1
    >>> pace.took(1, 0.001)  # 1 ms a message
    >>> pace.size()
    20
    >>> pace.took(20, 0.0001)  # much cheaper now: the estimate moves a quarter of the way
    >>> pace.size()
    26
    """

    def __init__(self, most: int, seconds: float) -> None:
        self.most, self.seconds = most, seconds
        self.per_message: float | None = None
        """Wall-clock seconds a message took, a moving mean over the recent batches."""

    def size(self) -> int:
        if self.per_message is None:
            return 1
        return max(1, min(self.most, int(self.seconds / self.per_message)))

    def took(self, messages: int, seconds: float) -> None:
        """Note that a batch of ``messages`` took ``seconds``."""
        cost = seconds / messages
        self.per_message = (cost if self.per_message is None
                            else self.per_message + (cost - self.per_message) / 4)


class OriginProgress:
    """Per partition of this worker: the newest event time each origin delivered to it.

    Each input partition delivers its events at most the reorder window out of order,
    so once an origin reached ``t`` at a partition, nothing it sends there later is
    before ``t - window``, whatever its routing key: the routing keys' buffers use that
    to know every origin from the start and to move on with the busy ones. Kept in
    memory; after a restart each buffer's own record of its origins stands in.
    """

    def __init__(self, idle_seconds: float = math.inf) -> None:
        self.idle_seconds = idle_seconds
        self._reached: dict[int, dict[str, float]] = {}
        self._heard: dict[int, dict[str, float]] = {}

    def see(self, partition: int, origin: str, time: float, now: float,
            expected: Iterable[str] = ()) -> dict[str, float]:
        """Note an arrival at ``now`` (quiet clock); return the live origins' progress.

        ``expected`` origins not heard of yet hold everything until they deliver. An
        origin silent for ``idle_seconds`` while this one delivers is left out until it
        delivers again.
        """
        reached = self._reached.setdefault(partition, {})
        heard = self._heard.setdefault(partition, {})
        for other in expected:
            if other not in reached:
                reached[other], heard[other] = -math.inf, now
        if time > reached.get(origin, -math.inf):
            reached[origin] = time
        heard[origin] = now
        return {other: at for other, at in reached.items()
                if now - heard[other] <= self.idle_seconds}

    def forget(self) -> None:
        """After a rebalance: partitions may have moved, and origins with them."""
        self._reached.clear()
        self._heard.clear()


class QuietClock:
    """The seconds a silence is measured in (a routing key's quiet flush, an origin left
    out of the wait): they pass only while the worker can take events.

    A silence is taken to mean that nothing more is coming. While the broker does not
    answer the worker's fetches (frozen, unreachable) or a fetch the worker took is held
    up (its sends wait on that broker), events may be waiting in Kafka: a key's held
    events flushed then would be scored before them, and they would come late, in an
    order ``replay`` never scores. So a hold-up counts for ``grace`` seconds at most:
    the clock stands still from ``grace`` after the worker last took a fetch or heard
    from its broker (:meth:`taking`) until it does again.

    >>> now = [0.0]
    >>> clock = QuietClock(grace=2.0, clock=lambda: now[0])
    >>> now[0] = 1.0
    >>> clock.taking()
    >>> clock.now()
    1.0
    >>> now[0] = 11.0  # nothing answered for 10 s: 2 of them count
    >>> clock.now()
    3.0
    >>> clock.taking()  # the broker answers again: the clock goes on from there
    >>> now[0] = 12.0
    >>> clock.now()
    4.0
    """

    def __init__(self, grace: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace, self.clock = grace, clock
        self._taking = clock()
        """When the worker last took a fetch or heard from its broker (``clock``)."""
        self._stood = 0.0
        """Seconds of ``clock`` the quiet clock stood still, in all."""

    def taking(self, at: float | None = None) -> None:
        """The worker took a fetch, or its broker answered one, at ``at`` (``clock``
        seconds; now if None)."""
        at = self.clock() if at is None else at
        if at > self._taking:
            self._stood += max(0.0, at - self._taking - self.grace)
            self._taking = at

    def now(self) -> float:
        return min(self.clock(), self._taking + self.grace) - self._stood


def process_batch(
    messages: Iterable[Received],
    engine: ScoringEngine,
    load_state: Callable[[bytes], bytes | None],
    input_topic: str,
    partitions: int,
    detected_at: datetime,
    live: LiveStates | None = None,
    progress: OriginProgress | None = None,
    now: float = 0.0,
    feedback_topic: str | None = None,
    pseudonymiser: Pseudonymiser | None = None,
    retention: StateRetention | None = None,
    limits: InputLimits = DEFAULT_LIMITS,
) -> BatchOutcome:
    """Parse, route, buffer and score ``messages`` in arrival order; each state is loaded
    once. Verdicts from ``feedback_topic`` are forwarded to their routing
    key's partition, and filed there.

    ``load_state(table key)`` returns the stored state, or None for a new user, team or
    buffer. Messages from a topic other than ``input_topic`` (the re-key topic) are
    always scored: they were sent to the right partition, and re-routing them could
    loop. ``live`` and ``progress`` carry what the worker knows from one batch to
    the next; ``now`` is the time on the :class:`QuietClock`, which silences are timed on.
    Without ``live``, the states touched come back encoded (``outcome.states``); with
    it, they stay there, changed, until the worker takes them to write them.

    With a ``pseudonymiser``, an input message's user id is replaced by its pseudonym
    before anything else (re-keyed messages carry it already, and not the producer's
    key), and a message that cannot be parsed is dead-lettered without its key, which
    may hold the id. With a ``retention``, a user whose state is stale at their event
    starts afresh. ``limits`` bound the messages; an event further ahead of
    ``detected_at`` than they allow is dead-lettered (``future``), as ``replay`` does
    with its ``--now``.
    """
    progress = OriginProgress() if progress is None else progress
    scoring = _Scoring(engine, load_state, detected_at, live, partitions, retention)
    clock = detected_at.timestamp()
    for message in messages:
        if message.verdict or message.topic == feedback_topic:
            scoring.verdict(message, forward=message.topic == feedback_topic)
            continue
        try:
            event = parse_event(message.value, limits, now=clock)
        except InvalidEvent as exc:
            letter = dead_letter(message.as_produced(input_topic), exc, detected_at, limits)
            if pseudonymiser is not None:
                letter = without_key(letter)
            scoring.outcome.dead_letters.append(letter)
            continue
        value = message.value  # what is forwarded: under pseudonyms, the event without the id
        if pseudonymiser is not None and message.topic == input_topic:
            event, forwarded = pseudonymiser.event(event)
            value = forwarded.encode()
        route = routing_key(event)
        expected: tuple[str, ...]
        if message.topic == input_topic:
            if (message.key != route.encode()
                    or partition_for(route, partitions) != message.partition):
                scoring.outcome.rekeyed.append(Rekeyed(
                    route.encode(), value, message.partition, message.offset,
                    message.key if pseudonymiser is None else None))
                continue
            origin, offset, expected = DIRECT_ORIGIN, message.offset, ()
        else:  # forwarded by a release without origins: one origin for all of them
            origin = "rekeyed" if message.origin is None else str(message.origin)
            offset = message.origin_offset
            expected = INPUT_ORIGINS[:partitions] if message.origin is not None else ()
        buffer = scoring.buffer(route)
        if not buffer.first_delivery(origin, offset):
            scoring.outcome.duplicates += 1  # read again: held or scored already
            continue
        reached = progress.see(message.partition, origin, event.epoch_seconds, now, expected)
        released = buffer.add(event, held_text(event), origin, reached)
        produced = message.as_produced(input_topic)
        if pseudonymiser is not None:  # its key may be the user id
            produced = replace(produced, key=None)
        scoring.score(route, released, (produced, event))
    return scoring.finish()


def flush_routes(
    routes: Iterable[str],
    engine: ScoringEngine,
    load_state: Callable[[bytes], bytes | None],
    partitions: int,
    detected_at: datetime,
    live: LiveStates | None = None,
    retention: StateRetention | None = None,
) -> BatchOutcome:
    """Score every event the routing keys' buffers hold, in order: they went quiet.

    Replay does the same at the end of its file, so the order is the same; only a
    later arrival before what was flushed is then late.
    """
    scoring = _Scoring(engine, load_state, detected_at, live, partitions, retention)
    for route in routes:
        scoring.score(route, scoring.buffer(route).flush())
    return scoring.finish()


class _Scoring:
    """One batch's scoring: each routing key's buffer, team and users loaded once."""

    def __init__(self, engine: ScoringEngine, load_state: Callable[[bytes], bytes | None],
                 detected_at: datetime, live: LiveStates | None, partitions: int,
                 retention: StateRetention | None = None) -> None:
        self.engine, self.load_state, self.detected_at = engine, load_state, detected_at
        self.partitions, self.retention = partitions, retention
        self.encode = live is None
        """Whether :meth:`finish` encodes the states touched (no worker keeps them)."""
        self.live = LiveStates() if live is None else live
        self.outcome = BatchOutcome()
        self.buffers: dict[str, ReorderBuffer] = {}
        self.teams: dict[str, TeamState] = {}
        self.users: dict[tuple[str, str], UserState] = {}
        self.books: dict[str, VerdictBook] = {}
        self.books_changed: set[str] = set()

    def _load(self, key: bytes, kind: type[S], decode: Callable[[bytes], S],
              new: Callable[[], S]) -> S:
        """The state under ``key``: the one held, else decoded from the table, else new."""
        state = self.live.get(key)
        if not isinstance(state, kind):
            raw = self.load_state(key)
            state = new() if raw is None else decode(raw)
            self.live.keep(key, state)
        return state

    def buffer(self, route: str) -> ReorderBuffer:
        buffer = self.buffers.get(route)
        if buffer is None:
            window = self.engine.config.scoring.reorder_seconds
            bound = self.engine.config.scoring.reorder_max_events
            buffer = self.buffers[route] = self._load(
                buffer_state_key(route), ReorderBuffer,
                lambda raw: ReorderBuffer.from_bytes(raw, window, bound),
                lambda: ReorderBuffer(window, bound))
        return buffer

    def book(self, route: str) -> VerdictBook:
        book = self.books.get(route)
        if book is None:
            book = self.books[route] = self._load(verdicts_state_key(route), VerdictBook,
                                                  VerdictBook.from_bytes, VerdictBook)
        return book

    def verdict(self, message: Received, forward: bool) -> None:
        """Forward a verdict from the feedback topic to its routing key; file one there."""
        try:
            verdict = parse_verdict(message.value)
        except InvalidVerdict as exc:
            failure = InvalidEvent("invalid_verdict", f"not a verdict: {exc}")
            self.outcome.dead_letters.append(dead_letter(message, failure, self.detected_at))
            return
        route = verdict.routing_key
        if forward:
            self.outcome.rekeyed.append(Rekeyed(route.encode(), message.value, None,
                                                verdict=True))
        elif self.book(route).file(verdict):
            self.books_changed.add(route)
            self.outcome.verdicts[verdict.verdict] += 1

    def score(self, route: str, released: list[Released],
              arrived: tuple[Received, TokenUsageEvent] | None = None) -> None:
        """Score one routing key's released events in order; ``arrived``: the message
        that released them and its event, to dead-letter that one by its own message."""
        outcome = self.outcome
        for item in released:
            event = item.event
            try:
                user = self._user(route, event.user_id)
                if (self.retention is not None and
                        self.retention.is_stale(user.context.last_time, event.epoch_seconds)):
                    user = self.users[route, event.user_id] = self.engine.new_state(
                        event.user_id)
                    outcome.expired += 1
                result = self.engine.score_event(
                    user, event, self.detected_at,
                    team_state=self._team(route) if event.team is not None else None,
                    verdicts=self.book(route))
            except Exception as exc:  # noqa: BLE001  # one bad event must not stop the stream
                # A bug in a detector, not in the event: the event is described, with the
                # error, where an operator looks, and the worker goes on with the next one.
                failure = InvalidEvent(  # the error's type only: its text may quote the event
                    "scoring_error", f"the detectors failed: {type(exc).__name__} (a bug: "
                    "please report it with this dead letter)")
                if arrived is not None and arrived[1] is event:
                    message = arrived[0]
                else:  # released from the buffer by another event: as the buffer holds it
                    message = Received(route.encode(), item.raw.encode(), "reorder-buffer",
                                       partition_for(route, self.partitions), -1)
                outcome.dead_letters.append(dead_letter(message, failure, self.detected_at))
                continue
            if result.duplicate:
                outcome.duplicates += 1
            else:
                outcome.late += item.late
                outcome.scored += not item.late
                outcome.alerts.extend(result.alerts)
                outcome.silenced.update(result.silenced)
                for alert in result.alerts:
                    tally = outcome.escalations if result.escalates(alert) else outcome.new_alerts
                    tally[alert.kind, alert.severity] += 1

    def _user(self, route: str, user_id: str) -> UserState:
        state = self.users.get((route, user_id))
        if state is None:
            state = self.users[route, user_id] = self._load(
                user_state_key(route, user_id), UserState, UserState.from_bytes,
                lambda: self.engine.new_state(user_id))
        return state

    def _team(self, team: str) -> TeamState:
        state = self.teams.get(team)
        if state is None:
            state = self.teams[team] = self._load(
                team_state_key(team), TeamState, TeamState.from_bytes,
                lambda: self.engine.new_team_state(team))
        return state

    def finish(self) -> BatchOutcome:
        """Mark every state touched as changed (encoded here when no worker keeps them)."""
        self.outcome.unpriced_models = self.engine.take_unpriced_models()
        for (route, user_id), user in self.users.items():
            key = user_state_key(route, user_id)
            self.live.change(key, user)
            self.outcome.user_times[key] = user.context.last_time
        for team, state in self.teams.items():
            self.live.change(team_state_key(team), state)
        for route in self.books_changed:
            self.live.change(verdicts_state_key(route), self.books[route])
        for route, buffer in self.buffers.items():
            self.live.change(buffer_state_key(route), buffer)
            self.outcome.held[route] = len(buffer)
        if self.encode:
            self.outcome.states = self.live.take_changed()
        return self.outcome


def without_key(letter: DeadLetter) -> DeadLetter:
    """A dead letter fit to keep under pseudonyms: no key, which may be the user id (the
    source position still finds the message, within the input's retention; the rest of
    a dead letter never carries the id: see :meth:`DeadLetter.describe`)."""
    return letter.model_copy(update={"original_key_base64": None})


def dead_letter(message: Received, error: InvalidEvent, at: datetime,
                limits: InputLimits = DEFAULT_LIMITS) -> DeadLetter:
    """The dead letter for ``message``: reason, where it came from, its key, and its value
    described and redacted (:meth:`DeadLetter.describe`), never copied."""
    fields, extra = DeadLetter.describe(
        message.value, readable=len(message.value) <= limits.max_event_bytes)
    return DeadLetter(
        reason=error.reason,
        error_type=error.error_type,
        original_size=len(message.value),
        original_sha256=DeadLetter.sha256(message.value),
        fields=fields,
        extra_fields=extra,
        original_key_base64=DeadLetter.encode_key(message.key),
        source_topic=message.topic,
        source_partition=message.partition,
        source_offset=message.offset,
        dead_lettered_at=at,
    )
