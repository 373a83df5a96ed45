"""Whole fetches to the worker, past Faust's per-event stream machinery.

Faust hands each message to an agent one at a time: a task raced against the flow
control per message, decoding into an event, a queue, a stream step that acks the
previous event; about 100 us of CPU per event, more than a bare agent's whole budget.
The worker scores a batch at a time anyway, so its source topics skip that path: the
consumer gives each fetch's messages of those topics to one call
(:class:`FetchConsumer`). Everything else stays Faust's: group membership, the
co-partitioned assignment, flow control across rebalances (a stopped flow delivers
nothing), seeks to committed offsets, and the table's changelog and recovery, whose
messages still take the ordinary path.

Faust's acks are not used for these messages: the worker commits their offsets itself,
exactly, once the states that record them are written (Faust's own commit of acked
offsets can step over offsets never acked: faust-streaming issues #596, #606).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted
from faust.transport.drivers import aiokafka as faust_aiokafka

FetchHandler = Callable[[list[Any]], Awaitable[None]]
"""Takes one fetch's messages of the source topics (Faust ``ConsumerMessage``s)."""
Settle = Callable[[], Awaitable[None]]
"""Writes what was taken and commits it: called before Faust waits for its own streams
and commits (a rebalance, a stop)."""


FETCH_WAIT_MS = 20
"""How long the broker may hold a fetch that finds nothing new (Faust's own: 1,500 ms)."""


class FetchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, whose fetches wait :data:`FETCH_WAIT_MS` at most."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_WAIT_MS  # read by its fetcher, made at start
        return consumer


class FetchConsumer(faust_aiokafka.Consumer):
    """Faust's Kafka consumer, giving the source topics' messages a fetch at a time.

    ``take`` gets them after Faust's own checks of each record (generation, flow,
    assignment), in the order Faust yields them (each partition in offset order), and
    awaited before the next fetch: a slow step holds the fetches back. Messages read
    before (a partition sought back, a fetch from before the seek) are left out, as
    Faust's own delivery does. ``settle`` is awaited before Faust waits for its streams
    and commits, so a rebalance or a stop first writes and commits all that was taken.
    """

    take: FetchHandler | None = None
    settle: Settle | None = None
    fetched_topics: frozenset[str] = frozenset()

    def _new_consumer_thread(self) -> FetchConsumerThread:
        return FetchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def getmany(self, timeout: float) -> AsyncIterator[Any]:
        taken: list[Any] = []
        inbound = self.app.monitor.stream_inbound_time
        read_offset = self._read_offset
        async for tp, message in super().getmany(timeout):
            if tp.topic not in self.fetched_topics:
                yield tp, message
                continue
            read = read_offset[tp]
            if read is not None and message.offset < read:
                continue  # read before (Faust's own test, in ``_drain_messages``)
            read_offset[tp] = message.offset
            taken.append(message)
            inbound[tp] = time.monotonic()  # Faust's monitor: this partition moves
        if taken and self.take is not None:
            await self.take(taken)

    def answered_at(self) -> float | None:
        """When the broker last answered a fetch of this consumer (``time.monotonic``
        seconds), with records or without; None before the first answer or while the
        consumer is not running."""
        try:
            consumer = self._thread._ensure_consumer()
            stamps = [consumer.last_poll_timestamp(tp) for tp in consumer.assignment()]
        except (ConsumerNotStarted, AssertionError):  # stopped, or unassigned meanwhile
            return None
        answered = max(filter(None, stamps), default=None)  # ms since the epoch
        if answered is None:
            return None
        return time.monotonic() - (time.time() - answered / 1000)

    async def wait_empty(self) -> None:
        if self.settle is not None:
            await self.settle()
        await super().wait_empty()


class FetchTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport, whose consumer gives ``topics`` a fetch at a time."""

    def __init__(self, app: faust.App, topics: Collection[str], take: FetchHandler,
                 settle: Settle) -> None:
        super().__init__(app.conf.broker_consumer, app)
        self.fetched_topics = frozenset(topics)
        self.take, self.settle = take, settle

    def create_consumer(self, callback: Any, **kwargs: Any) -> FetchConsumer:
        consumer = FetchConsumer(self, callback=callback, loop=self.loop, **kwargs)
        consumer.fetched_topics = self.fetched_topics
        consumer.take, consumer.settle = self.take, self.settle
        return consumer


def take_whole_fetches(app: faust.App, topics: faust.TopicT, take: FetchHandler,
                       settle: Settle) -> None:
    """Subscribe ``app`` to ``topics`` and give their messages to ``take`` a fetch at a
    time, ``settle`` before each wait for Faust's streams (call before the app starts)."""
    app.transport = FetchTransport(app, topics.topics, take, settle)
    app.topics.add(topics)  # subscribed as an agent's topic is; no agent reads it
