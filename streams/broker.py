"""Talking to a Kafka-protocol broker: does it answer, create topics, count partitions.

Starting a broker (embedded Tansu, a test container) is the lab's job:
:mod:`tokenradar.lab.brokers`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from tokenradar.schemas.settings import KafkaSecurity, bootstrap_of
from tokenradar.streams.security import kafka_python_options

BROKER_ENV = "TOKENRADAR_BROKER"
DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000
FIRST_RETRY_SECONDS = 1.0
LONGEST_RETRY_SECONDS = 15.0

log = logging.getLogger("tokenradar.broker")


class BrokerUnavailable(RuntimeError):
    """No broker could be reached or started; the message says what to do."""


def admin_client(url: str, security: KafkaSecurity | None = None, **options: Any
                 ) -> KafkaAdminClient:
    """A kafka-python admin client on ``url``, secured as ``security`` says."""
    return KafkaAdminClient(bootstrap_servers=bootstrap_of(url),
                            **kafka_python_options(security or KafkaSecurity()), **options)


def broker_answers(url: str, timeout_s: float = 3.0,
                   security: KafkaSecurity | None = None) -> bool:
    """True when the broker returns metadata (TCP accept alone is not enough)."""
    if not any(accepts_connections(address, timeout_s) for address in bootstrap_of(url)):
        return False  # fast: kafka-python's admin client waits 30 s for a dead bootstrap
    try:
        admin = admin_client(url, security, request_timeout_ms=int(timeout_s * 1000),
                             client_id="tokenradar-probe")
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def wait_for_broker(url: str, timeout_s: float, security: KafkaSecurity | None = None,
                    answers: Callable[[str], bool] | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> bool:
    """Ask until the broker answers, waiting 1 s, 2 s, 4 s ... up to 15 s between tries,
    for at most ``timeout_s``; a line is logged at each try. True once it answered.

    >>> tries = iter([False, False, True])
    >>> waited = []
    >>> wait_for_broker("h:1", 60, answers=lambda url: next(tries), sleep=waited.append)
    True
    >>> waited
    [1.0, 2.0]
    """
    answers = answers or (lambda address: broker_answers(address, 10.0, security))
    deadline = time.monotonic() + timeout_s
    pause = FIRST_RETRY_SECONDS
    while not answers(url):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        pause = min(pause, left)
        log.warning("the broker %s does not answer Kafka requests; trying again in %.0f s "
                    "(for %.0f s more: --broker-wait-seconds)", url, pause, left)
        sleep(pause)
        pause = min(2 * pause, LONGEST_RETRY_SECONDS)
    return True


def accepts_connections(address: str, timeout_s: float = 1.0) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def create_topics(
    url: str,
    names: Sequence[str],
    partitions: int,
    retention_ms: int = DEFAULT_RETENTION_MS,
    extra_configs: dict[str, str] | None = None,
    security: KafkaSecurity | None = None,
) -> None:
    """Create ``names`` with explicit partitions and retention; existing ones are left alone.

    Retention is always given because Tansu reports only the configs set at creation.
    """
    admin = admin_client(url, security, client_id="tokenradar-admin")
    try:
        for name in names:
            topic = NewTopic(
                name=name,
                num_partitions=partitions,
                replication_factor=1,
                topic_configs={"retention.ms": str(retention_ms), **(extra_configs or {})},
            )
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([topic])
    finally:
        admin.close()


def partition_count(url: str, topic: str, security: KafkaSecurity | None = None) -> int | None:
    """Partitions of ``topic``, or None when it does not exist."""
    admin = admin_client(url, security, client_id="tokenradar-admin")
    try:
        described = admin.describe_topics([topic])
    finally:
        admin.close()
    for entry in described:
        # kafka-python 3 says "name", 2.x said "topic"
        if entry.get("name", entry.get("topic")) == topic and entry.get("error_code", 0) == 0:
            return len(entry.get("partitions", []))
    return None
