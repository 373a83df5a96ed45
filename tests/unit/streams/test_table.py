"""The state table's writes, without a broker: what record batches reach the changelog."""

from __future__ import annotations

import asyncio

import faust
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch
from aiokafka.structs import TopicPartition

from tokenradar.streams.batch import buffer_state_key, partition_for, user_state_key
from tokenradar.streams.table import WRITE_MARKER, RoutedTable

PARTITIONS = 4
BATCH_BYTES = 16 * 1024

class _Producer:
    """Takes the record batches a write submits, as the Kafka client would send them."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, list[tuple[bytes, bytes | None]]]] = []

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(BATCH_BYTES, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int
                         ) -> asyncio.Future[None]:
        records = DefaultRecordBatch(bytearray(batch._build()))
        self.sent.append((partition, [(record.key, record.value) for record in records]))
        delivered = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered

def _write(states: dict[bytes, bytes]) -> tuple[RoutedTable, _Producer]:
    app = faust.App("table-test", broker="kafka://127.0.0.1:1", store="memory://",
                    producer_max_batch_size=BATCH_BYTES)
    table = RoutedTable(app, name="user-state", partitions=PARTITIONS, key_type=bytes,
                        value_type=bytes)
    producer = _Producer()
    app.producer._ensure_producer = lambda: producer  # type: ignore[attr-defined]
    asyncio.run(table.write(states))
    return table, producer

def _routes_in_one_partition(count: int) -> list[str]:
    routes = [f"team-{n}" for n in range(200)]
    return [r for r in routes if partition_for(r, PARTITIONS) == 0][:count]

def _states(route: str, users: int, size: int = 100) -> dict[bytes, bytes]:
    states: dict[bytes, bytes] = {buffer_state_key(route): b"b" * size}  # changed first
    states |= {user_state_key(route, f"u{n}"): b"u" * size for n in range(users)}
    return states

def test_each_routing_key_is_written_whole_in_one_batch_its_buffer_last() -> None:
    first, second = _routes_in_one_partition(2)
    states = _states(first, 3) | _states(second, 2)
    table, producer = _write(states)
    assert {key: table.data[key] for key in states} == states
    [(partition, batch), (_, closing)] = producer.sent
    assert partition == 0
    assert batch[0] == (WRITE_MARKER, None)  # a tombstone opens each batch
    assert closing == [(WRITE_MARKER, None)]  # and one alone ends the partition's write
    keys = [key for key, _ in batch[1:]]
    assert sorted(keys) == sorted(states)
    for route in (first, second):
        mine = [n for n, key in enumerate(keys) if key.startswith(route.encode() + b"\x1f")]
        assert mine == list(range(mine[0], mine[0] + len(mine)))  # together
        assert keys[mine[-1]] == buffer_state_key(route)  # the buffer last

def test_routing_keys_that_do_not_fit_together_start_a_new_batch() -> None:
    routes = _routes_in_one_partition(3)
    states: dict[bytes, bytes] = {}
    for route in routes:
        states |= _states(route, 10, size=600)  # about 6.6 KB each: two to a batch
    _, producer = _write(states)
    batches = [records for _, records in producer.sent]
    assert [len(records) for records in batches] == [23, 12, 1]
    assert all(records[0] == (WRITE_MARKER, None) for records in batches)
    routes_per_batch = [{key.split(b"\x1f")[0] for key, _ in records[1:]}
                        for records in batches]
    assert routes_per_batch == [set(map(str.encode, routes[:2])), {routes[2].encode()}, set()]

def test_a_routing_key_larger_than_a_batch_goes_whole_in_a_batch_of_its_own() -> None:
    first, second = _routes_in_one_partition(2)
    states = _states(first, 2) | _states(second, 40, size=1000)  # 41 KB: over 16 KB
    table, producer = _write(states)
    batches = [records for _, records in producer.sent]
    assert [len(records) for records in batches] == [4, 42, 1]
    assert all(records[0] == (WRITE_MARKER, None) for records in batches)
    assert batches[1][1:] == [(key, states[key]) for key in
                              sorted((k for k in states if k.startswith(second.encode())),
                                     key=lambda k: k.endswith(b"reorder"))]
    assert {key: table.data[key] for key in states} == states


def test_a_single_state_larger_than_a_batch_is_written() -> None:
    # A reorder buffer holding many events: once, it was silently left out, and the
    # events it held were lost at the next restart.
    [route] = _routes_in_one_partition(1)
    states = {buffer_state_key(route): b"b" * (3 * BATCH_BYTES)}
    _, producer = _write(states)
    assert producer.sent == [(0, [(WRITE_MARKER, None), *states.items()]),
                             (0, [(WRITE_MARKER, None)])]


def test_each_partition_gets_its_own_batches() -> None:
    routes = [f"team-{n}" for n in range(12)]
    states: dict[bytes, bytes] = {}
    for route in routes:
        states |= _states(route, 1)
    _, producer = _write(states)
    for partition, records in producer.sent:
        assert all(partition_for(key.split(b"\x1f")[0].decode(), PARTITIONS) == partition
                   for key, _ in records[1:])
    written = {partition for partition, _ in producer.sent}
    assert written == {partition_for(route, PARTITIONS) for route in routes}


class _Recovered:
    """A changelog record as Faust's recovery hands it to the table (an event)."""

    def __init__(self, tp: TopicPartition, offset: int, key: bytes, value: bytes | None
                 ) -> None:
        self.key, self.value = key, value
        self.message = self  # the record's place: .tp, .partition, .offset
        self.tp, self.partition, self.offset = tp, tp.partition, offset


def test_recovery_leaves_out_records_past_their_partitions_highwater() -> None:
    # CI once scored events twice after kill -9: on Tansu, the highwater of a write cut
    # short is the first record (a marker) of its last batch, and Faust hands on the
    # partitions' records round robin and applies all it was handed once the last
    # partition reached its highwater: part of that batch was applied, a user's state
    # without its routing key's buffer.
    [route] = _routes_in_one_partition(1)
    table, _ = _write({})
    cut_short, other = TopicPartition("changelog", 0), TopicPartition("changelog", 3)
    user, buffer = user_state_key(route, "u0"), buffer_state_key(route)
    written = [(WRITE_MARKER, None), (user, b"old user"), (buffer, b"old buffer"),
               (WRITE_MARKER, None)]  # one write, whole
    last_batch = [(WRITE_MARKER, None), (user, b"new user"), (buffer, b"new buffer")]
    first = [_Recovered(cut_short, n, *record) for n, record in enumerate(written + last_batch)]
    second = [_Recovered(other, n, b"team-x\x1fu" + bytes([n]), b"state") for n in range(6)]
    # Handed on round robin up to the other partition's highwater, its last record: the
    # cut-short batch's user state is among them, its buffer (written last) is not.
    round_robin = [event for pair in zip(first, second, strict=False) for event in pair]
    highwaters = table.app.tables.recovery.active_highwaters
    highwaters[cut_short], highwaters[other] = len(written), len(second) - 1
    table.apply_changelog_batch(round_robin)
    assert table.data[user] == b"old user"
    assert table.data[buffer] == b"old buffer"
    assert len([key for key in table.data if key.startswith(b"team-x")]) == len(second)
