"""Broker discovery, and the broker behaviour the worker relies on."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from tokenradar.lab.brokers import free_port, kafka_broker
from tokenradar.schemas.settings import bootstrap_of
from tokenradar.streams.broker import BROKER_ENV, BrokerUnavailable, create_topics, partition_count

pytestmark = pytest.mark.integration


def test_unreachable_broker_from_env_fails_with_a_clear_error():
    unused = f"127.0.0.1:{free_port()}"
    with (
        pytest.raises(BrokerUnavailable, match=f"{BROKER_ENV}={unused} does not answer"),
        kafka_broker({BROKER_ENV: unused}),
    ):
        pass


def test_create_topics_is_idempotent_and_sets_partitions(broker_url):
    name = f"topic-{uuid.uuid4().hex[:10]}"
    create_topics(broker_url, [name], partitions=3)
    create_topics(broker_url, [name], partitions=5)  # exists: left alone
    assert partition_count(broker_url, name) == 3
    assert partition_count(broker_url, f"missing-{name}") is None


def _is_tansu(broker_url: str) -> bool:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_of(broker_url))
    try:
        return admin.describe_cluster()["cluster_id"] == "tansu_cluster"  # Tansu's default
    finally:
        admin.close()


def test_latest_offset_counts_every_record_of_the_last_batch(broker_url, request):
    """Faust's table recovery reads a changelog up to ListOffsets "latest".

    Tansu 0.6.0 answers the last batch's base offset + 1, so recovery would stop
    early; streams/app.py works around it (each changelog partition's last write
    is a batch of its own) and test_worker_restart.py checks the result. Strict
    xfail: when Tansu is fixed this test passes, fails the run, and the
    workaround can go.
    """
    if _is_tansu(broker_url):
        request.applymarker(
            pytest.mark.xfail(strict=True, reason="Tansu 0.6.0: ListOffsets latest = base + 1")
        )
    topic = f"offsets-{uuid.uuid4().hex[:10]}"
    create_topics(broker_url, [topic], partitions=1)
    producer = KafkaProducer(bootstrap_servers=bootstrap_of(broker_url), linger_ms=200)
    for i in range(3):  # one batch of three records
        producer.send(topic, key=b"k", value=str(i).encode(), partition=0)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_of(broker_url))
    try:
        partition = TopicPartition(topic, 0)
        assert consumer.end_offsets([partition])[partition] == 3
    finally:
        consumer.close()
