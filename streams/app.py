"""The Faust app, declared in one place: topics, the user-state table, the agent.

Every topic carries raw bytes: values are parsed by ``schemas`` (never by Faust's
codecs, never pickle), table values are the detectors' own state codec.

Topics (``n`` = partitions of the input topic):

- input (``token-usage``), alerts, dead letters, feedback (verdicts on alerts, keyed by
  ``alert_id``; forwarded through the re-key topic to their routing key);
- ``<group>-<input>-by-user``: events not keyed by their routing key (team, else
  user id) or read from a partition other than its, forwarded with key = routing
  key and the input partition they came from as a header; ``n`` partitions;
- ``<group>-user-state-changelog``: Faust's changelog of the table; ``n``
  partitions, each record in its routing key's partition (:class:`RoutedTable`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import faust

from tokenradar.detectors import ScoringEngine
from tokenradar.detectors.reorder import ReorderBuffer
from tokenradar.detectors.retention import StateRetention
from tokenradar.detectors.state import stored_last_time
from tokenradar.schemas import DetectorConfig, WorkerSettings
from tokenradar.streams.batch import (
    KEY_SEPARATOR,
    ORIGIN_HEADER,
    ORIGIN_KEY_HEADER,
    ORIGIN_OFFSET_HEADER,
    VERDICT_HEADER,
    BatchOutcome,
    BatchPace,
    LiveStates,
    OriginProgress,
    QuietClock,
    Received,
    buffer_state_key,
    buffered_routing,
    flush_routes,
    is_user_state_key,
    partition_for,
    process_batch,
    routing_of,
)
from tokenradar.streams.broker import create_topics, partition_count
from tokenradar.streams.expiry import StateIndex
from tokenradar.streams.fetch import take_whole_fetches
from tokenradar.streams.health import WorkerHealth
from tokenradar.streams.metrics import WorkerMetrics
from tokenradar.streams.security import faust_credentials
from tokenradar.streams.table import DeclaredTables, RoutedTable

log = logging.getLogger("tokenradar.worker")

RAW: dict[str, Any] = {"value_type": bytes, "value_serializer": "raw", "key_serializer": "raw"}
TABLE_NAME = "user-state"
EXPIRY_CHECK_SECONDS = 2.0
"""How often the worker looks whether a partition's event time reached a new day."""
HEALTH_SAMPLE_SECONDS = 2.0
"""How often the event loop tells :class:`WorkerHealth` what waits (and that it runs)."""
COMMIT_SECONDS = 1.0
"""How often the states changed are written, and then the offsets they record committed."""
HOLD_UP_GRACE_SECONDS = 3.0
"""A hold-up of the worker's intake (its broker silent, a fetch taken and not done) that
still counts as time for the silences of :class:`QuietClock`: longer than the quiet
flush's timer (1 s at most), which notes the broker's answers to an idle worker."""


def rekey_topic_name(settings: WorkerSettings) -> str:
    return f"{settings.group_id}-{settings.input_topic}-by-user"


def changelog_topic_name(settings: WorkerSettings) -> str:
    return f"{settings.group_id}-{TABLE_NAME}-changelog"


def prepare_topics(settings: WorkerSettings) -> int:
    """Create missing topics; return the input's partition count, which all internal
    topics must share for the co-partitioned assignment to hold."""
    url, security = settings.broker, settings.kafka_security
    partitions = partition_count(url, settings.input_topic, security) or settings.partitions
    create_topics(
        url,
        [
            settings.input_topic,
            settings.alerts_topic,
            settings.dlq_topic,
            settings.feedback_topic,
            rekey_topic_name(settings),
        ],
        partitions,
        security=security,
    )
    create_topics(
        url,
        [changelog_topic_name(settings)],
        partitions,
        extra_configs={"cleanup.policy": "compact"},
        security=security,
    )
    for internal in (rekey_topic_name(settings), changelog_topic_name(settings)):
        found = partition_count(url, internal, security)
        if found != partitions:
            raise RuntimeError(
                f"topic {internal!r} has {found} partitions but {settings.input_topic!r} has "
                f"{partitions}: they must match; delete {internal!r} (its data is derived) "
                "and restart"
            )
    return partitions


def faust_options(settings: WorkerSettings, partitions: int) -> dict[str, Any]:
    """Faust settings tuned for a fast start and batched throughput (bench/ reuses them)."""
    return {
        "broker": settings.broker,
        "broker_credentials": faust_credentials(settings.kafka_security),
        "datadir": str(settings.data_dir),
        "store": "memory://",
        "web_enabled": False,
        "topic_partitions": partitions,
        "topic_replication_factor": 1,
        "topic_allow_declare": False,  # prepare_topics made them, with explicit retention
        "table_standby_replicas": 0,
        "TableManager": DeclaredTables,
        "consumer_auto_offset_reset": "earliest",
        # Tansu forms a new group only after session_timeout / 2: keep it short.
        "broker_session_timeout": settings.session_timeout_seconds,
        "broker_heartbeat_interval": min(3.0, settings.session_timeout_seconds / 3),
        "broker_rebalance_timeout": max(20.0, 2 * settings.session_timeout_seconds),
        "stream_recovery_delay": 0.0,
        "broker_commit_interval": 1.0,
        # A batch's alerts leave at the next turn of the event loop (between batches):
        # sends made while a batch is scored are in one request all the same.
        "producer_linger": 0.0,
        "producer_max_batch_size": 256 * 1024,
    }


def create_app(
    settings: WorkerSettings,
    config: DetectorConfig,
    metrics: WorkerMetrics | None = None,
    health: WorkerHealth | None = None,
) -> faust.App:
    """The worker's Faust app; topics are created here, before Faust starts."""
    partitions = prepare_topics(settings)
    metrics = WorkerMetrics() if metrics is None else metrics
    health = WorkerHealth(settings.stall_seconds) if health is None else health
    next_offsets: dict[tuple[str, int], int] = {}  # per source partition, in this process
    engine = ScoringEngine(config)
    live = LiveStates(settings.decoded_users)
    scored_to: dict[Any, int] = {}
    """Source partition -> the offset after the last message taken (scored, forwarded or
    dead-lettered) whose states are not written yet: committed once they are."""
    broken = False
    """Scoring failed (a bug): nothing more is scored, written or committed."""
    progress = OriginProgress(idle_seconds=settings.quiet_flush_seconds)
    quiet_clock = QuietClock(HOLD_UP_GRACE_SECONDS)
    fetch_in_hand = False
    pseudonymiser = settings.pseudonymiser()
    retention = StateRetention(settings.state_expiry_days, config.scoring.reorder_seconds)
    index = StateIndex(retention)
    reindex = True
    """Index the user states in the table (recovered after a restart or rebalance)."""
    app = faust.App(settings.group_id, **faust_options(settings, partitions))
    rekey_name = rekey_topic_name(settings)
    rekey_topic = app.topic(rekey_name, partitions=partitions, **RAW)
    alerts_topic = app.topic(settings.alerts_topic, **RAW)
    dlq_topic = app.topic(settings.dlq_topic, **RAW)
    table = RoutedTable(
        app,
        name=TABLE_NAME,
        beacon=app.tables.beacon,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,  # bytes types select Faust's "raw" codec
    )
    app.tables.add(table)
    sources = app.topic(
        settings.input_topic, rekey_topic_name(settings), settings.feedback_topic,
        partitions=partitions, **RAW
    )

    scoring = asyncio.Lock()
    """One batch or flush at a time: each loads, scores and stores the same states."""
    last_arrival: dict[str, float] = {}
    """Routing keys with held events -> when an event of theirs last arrived (quiet clock)."""
    held_events: dict[str, int] = {}
    rescan = True
    """Look for buffers in the table (recovered from the changelog) at the next flush."""

    async def publish(outcome: BatchOutcome) -> None:
        """Send the forwards, alerts and dead letters; count.

        The states that record the batch's events stay in ``live`` until
        :func:`send_written`, which flushes these sends first: what a batch sends is
        out before the states that record its events as taken (an event read again
        once its state says so is not scored again, see ``ReorderBuffer.first_delivery``),
        so a crash in between sends an alert twice, under its ``alert_id``, and never
        loses one.
        """
        for rekeyed in outcome.rekeyed:
            await rekey_topic.send(key=rekeyed.key, value=rekeyed.value,
                                   headers=rekeyed.headers())
        for alert in outcome.alerts:
            await alerts_topic.send(
                key=alert.user_id.encode(), value=alert.model_dump_json().encode()
            )
        for (kind, severity), n in outcome.new_alerts.items():
            metrics.alerts.labels(kind, severity).inc(n)
        for (kind, severity), n in outcome.escalations.items():
            metrics.escalations.labels(kind, severity).inc(n)
        for verdict, n in outcome.verdicts.items():
            metrics.verdicts.labels(verdict).inc(n)
        for (kind, reason), n in outcome.silenced.items():
            metrics.silenced.labels(kind, reason).inc(n)
        for letter in outcome.dead_letters:
            key64 = letter.original_key_base64
            await dlq_topic.send(
                key=key64 and base64.b64decode(key64), value=letter.model_dump_json().encode()
            )
            metrics.dead_letters.labels(letter.error_type).inc()
        for model in outcome.unpriced_models:
            log.warning("model %r is not in the price table: its requests without cost_usd "
                        "are priced at [prices.default]; add it to [prices.models]", model)
            metrics.unpriced_models.inc()
        _count(metrics, outcome)
        for key, last_time in outcome.user_times.items():
            index.note(partition_for(routing_of(key), partitions), key, last_time)
        metrics.users_expired.inc(outcome.expired)
        metrics.users_held.set(len(index))
        now = quiet_clock.now()
        for route, held in outcome.held.items():
            if held:
                last_arrival[route], held_events[route] = now, held
            else:
                last_arrival.pop(route, None)
                held_events.pop(route, None)
        metrics.held_events.set(sum(held_events.values()))

    writing = asyncio.Lock()
    """One write at a time, so that offsets are committed in the order they were taken."""

    def take_written() -> tuple[dict[bytes, bytes], dict[Any, int]] | None:
        """The states changed since the last write, encoded and stored in the table (a
        state no longer held decoded is then read back as it is now), and the offsets
        they record; None when there is nothing to write. Callers hold ``scoring``."""
        if broken or not (scored_to or live.has_changed()):
            return None
        states = live.take_changed()
        table.store(states)
        offsets = dict(scored_to)
        scored_to.clear()
        return states, offsets

    async def send_written(taken: tuple[dict[bytes, bytes], dict[Any, int]] | None) -> None:
        """Flush what was sent, send the states to the changelog, wait for the broker's
        acks, and only then commit the offsets of the messages those states record.
        Callers hold ``writing``.

        A crash anywhere in between loses nothing: until the commit, the messages are
        read again after a restart, and each routing key's states, written whole
        (:meth:`RoutedTable.write`), say which of them it took already. The flush comes
        first because the states' batches sent their alerts, forwards and dead letters
        before the states were taken.
        """
        if taken is None:
            return
        states, offsets = taken
        await app.producer.flush()
        for state in states.values():
            metrics.state_bytes.observe(len(state))
        if states:
            await table.write(states)
        if offsets:
            # Faust's commit of these exact offsets (revoked partitions left out), not of
            # acked ones: nothing of the source topics is acked.
            await app.consumer._commit_offsets(offsets)  # type: ignore[attr-defined]

    pace = BatchPace(settings.batch_size, settings.batch_seconds)

    async def score_fetch(messages: list[Any]) -> None:
        """Score a fetch in batches (:class:`BatchPace`): hand each to the core, publish,
        and let the producer send that before the next."""
        nonlocal broken
        generation = messages[0].generation_id
        async with scoring:
            if broken:
                return  # never committed: read again after a restart
            try:
                first = 0
                while first < len(messages):
                    if app.consumer_generation_id != generation:
                        # Partitions moved since the fetch: once they settle, what this
                        # fetch changed is forgotten, and Faust seeks back to the
                        # committed offsets, so all of it is read again.
                        return
                    batch = messages[first:first + pace.size()]
                    started = time.perf_counter()
                    sent = await score_batch(batch)
                    pace.took(len(batch), time.perf_counter() - started)
                    first += len(batch)
                    if sent and first < len(messages):
                        await asyncio.sleep(0)  # the producer sends them now (no linger)
            except Exception as error:
                broken = True
                health.agent_crashed(error)
                log.exception("scoring stopped: the worker takes no more events; restart it")
                return
            if app.consumer_generation_id != generation:
                return
            for message in messages:
                scored_to[message.tp] = message.offset + 1  # each partition in order
        for message in messages:
            source = (message.topic, message.partition)
            next_offsets[source] = max(next_offsets.get(source, 0), message.offset + 1)
        health.processed()

    async def score_batch(batch: list[Any]) -> bool:
        """Score and publish ``batch``; whether it sent anything (alerts, dead letters,
        forwards)."""
        started = time.perf_counter()
        received = [
            Received(
                message.key,
                message.value or b"",
                message.topic,
                message.partition,
                message.offset,
                # A producer's headers are not trusted: only the re-key hop's are read.
                *(_origin(message.headers) if message.topic == rekey_name
                  else (None, None, None)),
                verdict=message.topic == rekey_name and _is_verdict(message.headers),
            )
            for message in batch
        ]
        outcome = process_batch(
            received,
            engine,
            table.stored,
            settings.input_topic,
            partitions,
            datetime.now(UTC),
            live,
            progress,
            quiet_clock.now(),
            feedback_topic=settings.feedback_topic,
            pseudonymiser=pseudonymiser,
            retention=retention,
            limits=settings.input_limits,
        )
        await publish(outcome)
        metrics.batch_events.observe(len(batch))
        metrics.batch_seconds.observe(time.perf_counter() - started)
        metrics.last_event_seconds.set_to_current_time()
        return bool(outcome.alerts or outcome.dead_letters or outcome.rekeyed)

    async def take_fetch(messages: list[Any]) -> None:
        """Score a fetch; shielded, so that a stop in the middle waits for its end rather
        than leaving states ahead of what was sent."""
        nonlocal fetch_in_hand
        quiet_clock.taking()
        fetch_in_hand = True
        try:
            await asyncio.shield(score_fetch(messages))
        finally:
            fetch_in_hand = False
            quiet_clock.taking()

    async def settle() -> None:
        """Before Faust commits for a rebalance or a stop: write what was taken, commit."""
        async with writing, scoring:
            await send_written(take_written())

    take_whole_fetches(app, sources, take_fetch, settle)

    @app.timer(interval=COMMIT_SECONDS)
    async def write_changed_states() -> None:
        """Write the states changed since the last time, then commit what they record."""
        if app.rebalancing:  # written before the partitions moved (settle)
            return
        async with writing:
            async with scoring:
                taken = take_written()
            # Batches are scored meanwhile: the broker's acks (tens of ms) no longer hold
            # up the events that arrive; what they change is the next write's.
            await send_written(taken)

    source_topics = {settings.input_topic, rekey_topic_name(settings)}

    @app.timer(interval=HEALTH_SAMPLE_SECONDS)
    async def sample_progress() -> None:
        """Tell the health watch what waits on this worker's source partitions."""
        try:
            assignment = app.consumer.assignment()
        except Exception as exc:  # consumer not started or stopping: no sample this time
            log.debug("no assignment for the health sample: %r", exc)
            return
        assigned = {tp for tp in assignment if tp.topic in source_topics}
        busy = bool(app.rebalancing or app.in_recovery)
        waiting = 0 if busy else await events_waiting(app.consumer, assigned, next_offsets)
        inputs = sum(tp.topic == settings.input_topic for tp in assigned)  # re-key: the same
        health.observe(inputs, waiting, recovering=busy)

    @app.timer(interval=min(1.0, settings.quiet_flush_seconds / 2))  # type: ignore[untyped-decorator]  # Faust stub
    async def flush_quiet_routes() -> None:
        """Score the held events of routing keys that got no event for a while, in order.

        Their buffers would otherwise wait for the key's next event (the next morning,
        for a team at night). "A while" is ``quiet_flush_seconds`` on the quiet clock,
        which stands still while the worker cannot take events (:class:`QuietClock`):
        a frozen broker makes no key quiet. Buffers recovered from the changelog after
        a restart or a rebalance count as arrived when first seen here.
        """
        nonlocal rescan
        if not fetch_in_hand and not scoring.locked():  # free to take what comes
            answered = app.consumer.answered_at()
            if answered is not None:
                quiet_clock.taking(answered)
        if app.rebalancing:  # partitions are moving: flush once they settled
            return
        if rescan:
            rescan = False
            now = quiet_clock.now()
            for key in list(table.keys()):
                route = buffered_routing(key)
                if route is not None:
                    last_arrival.setdefault(route, now)
        mine = {tp.partition for tp in app.consumer.assignment()
                if tp.topic == settings.input_topic}

        def quiet_routes() -> list[str]:
            quiet_since = quiet_clock.now() - settings.quiet_flush_seconds
            return sorted(route for route, at in last_arrival.items()
                          if at <= quiet_since and partition_for(route, partitions) in mine)

        if not quiet_routes():
            return
        async with scoring:
            quiet = quiet_routes()  # again: a batch scored while this waited may have news
            if quiet:
                await publish(flush_routes(quiet, engine, table.stored, partitions,
                                           datetime.now(UTC), live, retention))

    @app.timer(interval=EXPIRY_CHECK_SECONDS)
    async def expire_states() -> None:
        """Delete the states of users gone for ``state_expiry_days`` (tombstones on the
        changelog), each time a partition's event time reaches a new day."""
        nonlocal reindex
        if app.rebalancing or app.in_recovery:  # the table is not whole yet
            return
        if reindex:
            reindex = False
            for number, key in enumerate(list(table.keys())):
                raw = table.stored(key) if is_user_state_key(key) else None
                if raw is not None:
                    last_time = stored_last_time(raw)
                    index.note(partition_for(routing_of(key), partitions), key, last_time)
                if number % 1000 == 999:
                    await asyncio.sleep(0)  # a large table: let batches and probes in
                    if app.rebalancing or app.in_recovery:  # partitions move: start over
                        index.forget()
                        reindex = True
                        return
        async with writing, scoring:
            gone = index.due()
            if gone:  # the table then holds every state, as this worker, sent before any
                await send_written(take_written())  # tombstone below
            for key in gone:
                if table.get(key) is not None:
                    del table[key]
                live.drop(key)
                route, _, user = key.partition(KEY_SEPARATOR)
                buffer = buffer_state_key(route.decode())
                if route == user and buffer in table and not ReorderBuffer.from_bytes(
                        table[buffer], config.scoring.reorder_seconds):
                    del table[buffer]  # a teamless user's own, empty reorder buffer
                    live.drop(buffer)
        metrics.users_expired.inc(len(gone))
        metrics.users_held.set(len(index))
        if gone:
            log.info("deleted the state of %d users without an event for %g days",
                     len(gone), retention.expiry_days)

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # Faust stub too narrow
    def hold_input_until_seeked(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Stop the consumer's flow while Faust seeks the stream partitions back.

        After every rebalance Faust (``Recovery.on_recovery_completed`` and
        ``_resume_streams``) sends this signal, then resumes the stream partitions,
        seeks them one by one to their committed offsets, and only then calls
        ``flow_control.resume()``, which empties every agent's queue, and
        ``consumer.resume_flow()``. The consumer's flow is still on from the table
        recovery, so a record fetched after its partition's seek can reach an agent's
        queue before that emptying and be thrown away: never processed, and its offset
        then committed over, since Faust commits across a one-offset gap after the
        committed offset (faust-streaming issues #596, #606). It lost one event in
        about one restart in eight (tests/integration/test_worker_restart.py).

        Stopped here, nothing is delivered until Faust's own ``resume_flow()`` right
        after the emptying, and every record then comes from the sought positions.
        Records fetched before the seek are dropped and fetched again, as Faust meant.
        """
        app.consumer.stop_flow()

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # Faust stub too narrow
    def forget_decoded_states(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Keep decoded only what this worker holds now: the rest is decoded when needed;
        find again which routing keys hold events (partitions came and went).

        Offsets processed are forgotten too: a partition that comes back may have been
        processed further by another worker (its committed offset then says how far).
        """
        nonlocal rescan, reindex
        live.forget()
        scored_to.clear()  # written and committed at the revocation (settle), else read again
        index.forget()
        reindex = True
        next_offsets.clear()
        progress.forget()
        last_arrival.clear()
        held_events.clear()
        rescan = True

    ready_logged = False

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # Faust stub too narrow
    def log_ready(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        nonlocal ready_logged
        if not ready_logged:
            ready_logged = True
            log.info(
                "tokenradar worker ready: consuming %s (%d partitions) on %s, "
                "alerts to %s, dead letters to %s",
                settings.input_topic,
                partitions,
                settings.broker,
                settings.alerts_topic,
                settings.dlq_topic,
            )

    return app


async def events_waiting(
    consumer: Any, partitions: Collection[Any], next_offsets: Mapping[tuple[str, int], int]
) -> int:
    """Events past the next offset to process, summed over ``partitions``.

    The next offset is the one after the last processed here, else the group's committed
    offset, else the partition's first. The high watermark is the larger of the last
    fetch's (stale when the consumer stopped fetching) and ListOffsets "latest" (low on
    Tansu, which answers the last batch's first offset + 1): never above the truth.
    """
    if not partitions:
        return 0
    listed: Mapping[Any, int] = {}
    first: Mapping[Any, int] = {}
    committed = consumer._committed_offset  # Faust 0.15's own record of commits
    unknown = [
        tp for tp in partitions
        if (tp.topic, tp.partition) not in next_offsets and committed.get(tp) is None
    ]  # fmt: skip
    # A failed or slow query falls back to what is known: sampling must never raise,
    # or the samples stop and the worker would read as a blocked event loop.
    try:
        listed = await asyncio.wait_for(consumer.highwaters(*partitions), HEALTH_SAMPLE_SECONDS)
        if unknown:
            first = await asyncio.wait_for(
                consumer.earliest_offsets(*unknown), HEALTH_SAMPLE_SECONDS
            )
    except Exception as exc:  # any client error: keep the fetch's figures
        log.debug("could not list offsets for the health sample: %r", exc)
    waiting = 0
    for tp in partitions:
        high = max(consumer.highwater(tp) or 0, listed.get(tp) or 0)
        start = next_offsets.get((tp.topic, tp.partition))
        if start is None:
            start = committed.get(tp)
        if start is None:
            start = first.get(tp, 0)
        waiting += max(0, high - start)
    return waiting


def _count(metrics: WorkerMetrics, outcome: BatchOutcome) -> None:
    for name, n in (
        ("scored", outcome.scored),
        ("late", outcome.late),
        ("duplicate", outcome.duplicates),
        ("rekeyed", len(outcome.rekeyed)),
        ("dead_lettered", len(outcome.dead_letters)),
    ):
        if n:
            metrics.events.labels(name).inc(n)


def _is_verdict(headers: Any) -> bool:
    """Is this a verdict forwarded to its routing key (the verdict header)?"""
    pairs = headers.items() if isinstance(headers, dict) else headers or ()
    return any(name == VERDICT_HEADER for name, _ in pairs)


def _origin(headers: Any) -> tuple[int | None, int | None, bytes | None]:
    """Where a re-keyed message was first read (its origin headers): input partition,
    offset and key; Nones for a message straight from a producer."""
    pairs = headers.items() if isinstance(headers, dict) else headers or ()
    found = dict(pairs)
    partition, offset = found.get(ORIGIN_HEADER), found.get(ORIGIN_OFFSET_HEADER)
    return (int(partition) if partition else None, int(offset) if offset else None,
            found.get(ORIGIN_KEY_HEADER))
