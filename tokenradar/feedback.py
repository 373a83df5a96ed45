"""``tokenradar feedback``: a person's verdict on an alert, to the feedback topic or a file.

The alert is looked up (in the alerts topic, or a ``replay`` alerts file) by its id or
a unique start of it, as ``alerts tail`` shows it; the verdict carries the alert's
user, team and kind, so the worker can take it where that user's state lives.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path

from kafka import KafkaProducer
from pydantic import ValidationError

from tokenradar.schemas import AnomalyEvent, WorkerSettings
from tokenradar.schemas.feedback import SILENCING, FeedbackVerdict
from tokenradar.schemas.settings import KafkaSecurity
from tokenradar.streams.security import kafka_python_options

FEEDBACK_TOPIC_ENV = "TOKENRADAR_FEEDBACK_TOPIC"
DEFAULT_FEEDBACK_TOPIC = str(WorkerSettings.model_fields["feedback_topic"].default)
MIN_PREFIX = 6
"""Shortest start of an alert id taken for the whole (``alerts tail`` shows 12)."""
IDLE_MS = 2000
"""Reading the alerts topic ends after this long without a record: its end."""


class FeedbackError(Exception):
    """An alert that cannot be found, or a verdict that cannot be made; says how to fix it."""


def feedback_topic(topic: str | None, environ: Mapping[str, str] | None = None) -> str:
    """``--topic``, else ``$TOKENRADAR_FEEDBACK_TOPIC`` (the worker's setting), else the
    default ``token-anomalies.feedback``."""
    environ = os.environ if environ is None else environ
    return topic or environ.get(FEEDBACK_TOPIC_ENV) or DEFAULT_FEEDBACK_TOPIC


def find_alert(alert_id: str, alerts: Iterable[AnomalyEvent], where: str) -> AnomalyEvent:
    """The alert whose id is ``alert_id``, or the one alert whose id starts with it."""
    if len(alert_id) < MIN_PREFIX:
        raise FeedbackError(f"alert id {alert_id!r} is too short: give at least {MIN_PREFIX} "
                            "characters of it (alerts tail shows 12)")
    matches: dict[str, AnomalyEvent] = {}
    for alert in alerts:
        if alert.alert_id == alert_id:
            return alert
        if alert.alert_id.startswith(alert_id):
            matches.setdefault(alert.alert_id, alert)
    if not matches:
        raise FeedbackError(f"no alert {alert_id} in {where}: check the id (alerts tail "
                            "shows its start in brackets) and where you look (--alerts, "
                            "--alerts-topic, --broker)")
    if len(matches) > 1:
        raise FeedbackError(f"{alert_id} starts {len(matches)} alert ids in {where} "
                            f"({', '.join(sorted(matches))}): give more of it")
    return next(iter(matches.values()))


def alerts_in_file(path: Path) -> Iterator[AnomalyEvent]:
    """The alerts of a JSONL file (``replay --alerts-out``); a bad line is an error."""
    with open(path, "rb") as source:
        for number, line in enumerate(source, start=1):
            if line.strip():
                try:
                    yield AnomalyEvent.model_validate_json(line)
                except ValidationError:
                    raise FeedbackError(f"{path} line {number} is not an alert: give a file "
                                        "of alerts, such as replay --alerts-out wrote") from None


def alerts_on_topic(servers: list[str], topic: str, security: KafkaSecurity | None = None
                    ) -> Iterator[AnomalyEvent]:
    """Every alert of ``topic`` from its beginning, until it has none left to give."""
    from tokenradar.alert_topic import alerts_consumer, parse_alert

    consumer = alerts_consumer(servers, topic, group_id=None, from_beginning=True,
                               security=security, consumer_timeout_ms=IDLE_MS)
    try:
        for record in consumer:
            alert = parse_alert(record)
            if alert is not None:
                yield alert
    finally:
        consumer.close()


def verdict_on(alert: AnomalyEvent, verdict: str, at: datetime, silence_for: timedelta,
               note: str | None) -> FeedbackVerdict:
    """The verdict message for ``alert``, given at ``at``; a silence lasts ``silence_for``."""
    try:
        return FeedbackVerdict(
            alert_id=alert.alert_id, verdict=verdict, user_id=alert.user_id,  # type: ignore[arg-type]  # checked by the model
            team=alert.team, kind=alert.kind, timestamp=at,
            until=at + silence_for if verdict in SILENCING else None, note=note)
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise FeedbackError(f"cannot make the verdict: {'.'.join(map(str, problem['loc']))}: "
                            f"{problem['msg'].removeprefix('Value error, ')}") from None


def send_verdict(servers: list[str], topic: str, verdict: FeedbackVerdict,
                 security: KafkaSecurity | None = None) -> None:
    """Produce ``verdict`` to ``topic`` keyed by its ``alert_id``, and wait until sent."""
    from tokenradar.streams.broker import create_topics

    create_topics("kafka://" + ",".join(servers), [topic],
                  WorkerSettings.model_fields["partitions"].default, security=security)
    producer = KafkaProducer(bootstrap_servers=servers, client_id="tokenradar-feedback",
                             acks="all", **kafka_python_options(security or KafkaSecurity()))
    try:
        producer.send(topic, key=verdict.alert_id.encode(),
                      value=verdict.model_dump_json(exclude_none=True).encode()).get(30)
    finally:
        producer.close()


def describe(verdict: FeedbackVerdict) -> str:
    """One line saying what the verdict does."""
    whom = f"{verdict.kind} for {verdict.user_id}" + (f" ({verdict.team})" if verdict.team
                                                      else "")
    if verdict.until is None:
        return f"verdict true on alert {verdict.alert_id[:12]}, {whom}: recorded"
    return (f"verdict {verdict.verdict} on alert {verdict.alert_id[:12]}: {whom} silenced "
            f"from {verdict.timestamp:%Y-%m-%d %H:%M %Z} until {verdict.until:%Y-%m-%d %H:%M %Z}"
            ", and learned as usual meanwhile")
