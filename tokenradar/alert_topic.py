"""Reading the alerts topic: where the broker is, a consumer on the topic, each record
parsed into an alert (or reported, when it is not one). Shared by ``alerts tail`` and
the bridge."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from pydantic import ValidationError

from tokenradar.schemas import AnomalyEvent, WorkerSettings
from tokenradar.schemas.settings import KafkaSecurity
from tokenradar.streams.broker import BROKER_ENV, broker_answers
from tokenradar.streams.security import kafka_python_options, login_hint

ALERTS_TOPIC_ENV = "TOKENRADAR_ALERTS_TOPIC"
DEFAULT_ALERTS_TOPIC = WorkerSettings.model_fields["alerts_topic"].default


class AlertTopicError(Exception):
    """A broker or topic the user named cannot be read; the message says how to fix it."""


def bootstrap_servers(broker: str | None, environ: Mapping[str, str] | None = None,
                      security: KafkaSecurity | None = None) -> list[str]:
    """``--broker``, else ``$TOKENRADAR_BROKER``, else the worker's default (127.0.0.1:9092,
    where ``tokenradar broker`` listens); checked that it answers."""
    environ = os.environ if environ is None else environ
    given = broker or environ.get(BROKER_ENV) or WorkerSettings.model_fields["broker"].default
    try:
        url = WorkerSettings(broker=given).broker
    except ValidationError as exc:
        raise AlertTopicError(f"--broker {given}: {exc.errors()[0]['msg']}") from None
    if not broker_answers(url, security=security):
        raise AlertTopicError(
            f"the broker {url} does not answer Kafka requests: start it (`tokenradar broker` "
            f"for a local one), or give its address with --broker or ${BROKER_ENV}"
            + login_hint(security or KafkaSecurity()))
    return WorkerSettings(broker=url).bootstrap_servers


def alerts_topic(topic: str | None, environ: Mapping[str, str] | None = None) -> str:
    """``--topic``, else ``$TOKENRADAR_ALERTS_TOPIC`` (the worker's setting), else the default."""
    environ = os.environ if environ is None else environ
    return topic or environ.get(ALERTS_TOPIC_ENV) or str(DEFAULT_ALERTS_TOPIC)


def alerts_consumer(servers: list[str], topic: str, group_id: str | None,
                    from_beginning: bool, security: KafkaSecurity | None = None,
                    **options: Any) -> KafkaConsumer:
    """A consumer subscribed to ``topic``; offsets are never committed automatically."""
    consumer = KafkaConsumer(
        **kafka_python_options(security or KafkaSecurity()),
        bootstrap_servers=servers,
        group_id=group_id,
        client_id="tokenradar-alerts",
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        **options,
    )
    if topic not in consumer.topics():
        print(f"tokenradar: the topic {topic} does not exist yet; waiting for it "
              f"(another name with --topic or ${ALERTS_TOPIC_ENV})", file=sys.stderr)
    consumer.subscribe([topic])
    return consumer


def parse_alert(record: ConsumerRecord) -> AnomalyEvent | None:
    """The alert in ``record``, or None (said on stderr) when it is not a valid one."""
    try:
        return AnomalyEvent.model_validate_json(record.value)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(map(str, problem["loc"])) or "message"
        print(f"tokenradar: skipped {record.topic} partition {record.partition} offset "
              f"{record.offset}: not an alert ({where}: {problem['msg']})", file=sys.stderr)
        return None
