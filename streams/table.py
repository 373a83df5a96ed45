"""The state table: each key in its routing key's partition, written a routing key at a
time in record batches, and Faust's table manager without its start-up sleep."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import faust
from aiokafka.producer.message_accumulator import BatchBuilder
from faust.tables import TableManager
from faust.types import EventT

from tokenradar.streams.batch import BUFFER_SUFFIX, KEY_SEPARATOR, partition_for, routing_of

WRITE_MARKER = KEY_SEPARATOR + b"\x00write"
"""Key of the tombstone that opens every record batch of a write (no state has it)."""
RECORD_OVERHEAD = 32
"""Bytes a record adds to a batch besides its key and value (at most, without headers)."""
BATCH_OVERHEAD = 256
"""Bytes a record batch takes besides its records' (its header is 61), and its marker."""


class RoutedTable(faust.Table[bytes, bytes]):
    """The state table: a key's changelog partition is its routing key's partition.

    Keys are ``routing key + 0x1f + user id`` (or nothing, for the team's own state),
    so a team's state and all its members' share the partition their events are
    scored from, whichever event of the batch Faust thinks is current.
    """

    def stored(self, key: bytes) -> bytes | None:
        """The bytes stored under ``key``, else None: read from the store's dict (the
        worker's store is Faust's memory store), not through ``Table.get``, which calls
        Faust's sensors and raises and catches a KeyError for every key not stored (a
        new user): 2.5% of the worker's CPU with 2 events a user."""
        return self.data.data.get(key)

    def partition_for_key(self, key: Any) -> int | None:
        assert self.partitions is not None, "the state table is declared with partitions"
        return partition_for(routing_of(key), self.partitions)

    def apply_changelog_batch(self, batch: Iterable[EventT[Any]]) -> None:
        """Apply the recovered records, leaving out those past their partition's
        highwater, as the recovery reads them.

        Faust reads every changelog partition to its highwater, but hands the records
        on round robin across partitions and applies all it was handed when the last
        partition gets there: a partition done sooner has records past its highwater
        applied too, as many as the others' took turns. On Tansu the highwater of a
        write cut short by a crash is the first record of its last batch (see
        :meth:`write`), so that batch was applied in part: a user's state newer than
        its routing key's reorder buffer, which says which input offsets it took, and
        the events read again after the restart were scored twice (``make faults``
        failed so once in CI). Left out, that batch is all old, as :meth:`write` means.
        """
        highwaters = self.app.tables.recovery.active_highwaters  # type: ignore[attr-defined]  # the manager's
        super().apply_changelog_batch([
            event for event in batch
            if event.message.offset <= highwaters.get(event.message.tp, event.message.offset)])

    def store(self, states: Mapping[bytes, bytes]) -> None:
        """Put ``states`` in the store alone, without a changelog send per key (Faust's
        ``table[key] = value``): :meth:`write` sends them."""
        self.data.data.update(states)

    async def write(self, states: Mapping[bytes, bytes]) -> None:
        """Store ``states`` and send them to the changelog, each routing key's states in
        one record batch (several keys' to a batch), rather than a send per record;
        return once the broker acknowledged every batch.

        A record batch is appended whole or not at all, so a crash in the middle of a
        write leaves each routing key's states all new or all old: never a user's state
        ahead of the reorder buffer that records which input offsets were taken (the
        events read again would be taken twice), nor behind it (they would be lost).
        A routing key whose states outgrow ``producer_max_batch_size`` goes in a batch
        of its own, as large as they need (a reorder buffer holding many events).

        Tansu 0.6.0 answers ListOffsets "latest" with the base offset of the last
        record batch + 1, so Faust's recovery reads only the first record of the last
        batch. Each batch opens with a tombstone of :data:`WRITE_MARKER`, and each
        partition's write ends with one alone: recovery then reads every whole write,
        and of a write cut short by a crash nothing of its last batch. On Kafka that
        changes nothing else.
        """
        producer = self.app.producer._ensure_producer()  # type: ignore[attr-defined]  # aiokafka's
        topic = self.changelog_topic.get_topic_name()
        limit = self.app.conf.producer_max_batch_size
        by_partition: dict[int | None, dict[bytes, list[tuple[bytes, bytes]]]] = defaultdict(
            lambda: defaultdict(list))
        self.store(states)
        for key, value in states.items():
            routing = key.partition(KEY_SEPARATOR)[0]
            by_partition[self.partition_for_key(key)][routing].append((key, value))

        def opened(size: int | None = None) -> Any:
            """A record batch of ``producer_max_batch_size``, or of ``size``, uncompressed,
            for one routing key's states that need more (sent as one all the same)."""
            batch = producer.create_batch() if size is None else BatchBuilder(size, 0)
            batch.append(timestamp=None, key=WRITE_MARKER, value=None)
            return batch

        delivered: list[asyncio.Future[Any]] = []

        async def send(batch: Any, partition: int | None) -> None:
            batch.close()  # nothing else joins it
            delivered.append(await producer.send_batch(batch, topic, partition=partition))

        for partition, routes in by_partition.items():
            batch = opened()
            for records in routes.values():
                records.sort(key=lambda record: record[0].endswith(BUFFER_SUFFIX))
                size = sum(len(key) + len(value) + RECORD_OVERHEAD for key, value in records)
                if batch.record_count() > 1 and batch.size() + size > limit:
                    await send(batch, partition)
                    batch = opened()
                if batch.size() + size > limit:  # alone larger than a batch: one of its size
                    batch = opened(size + BATCH_OVERHEAD)
                for key, value in records:
                    if batch.append(timestamp=None, key=key, value=value) is None:
                        raise AssertionError(f"a batch sized for {size} bytes is full")
            await send(batch, partition)
            await send(opened(), partition)
        await asyncio.gather(*delivered)  # raises if one was not: then nothing is committed


class DeclaredTables(TableManager):
    """Faust's table manager, without the second it sleeps at start so that tables an
    agent declares as it starts are registered: the worker's table is declared with
    the app, so the group is joined a second sooner."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()
