"""``tokenradar bridge``: forward alerts to Alertmanager and to a Slack-style webhook.

At-least-once: the bridge reads the alerts topic in a consumer group and commits a
message's offset only once every receiver has it, retrying a failed call with backoff
for as long as it takes. A restart, or a rebalance while it retries, reads the
uncommitted messages again, so a receiver may get an alert twice (Alertmanager merges
the two), never zero times. What the payloads hold is in :mod:`tokenradar.alert_delivery`.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, ClassVar
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from kafka import KafkaConsumer
from kafka.errors import CommitFailedError
from kafka.structs import OffsetAndMetadata, TopicPartition
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tokenradar.alert_delivery import (
    alertmanager_alerts,
    alertmanager_url,
    backoff_seconds,
    should_retry,
    webhook_message,
)
from tokenradar.alert_feed import AlertFeed, AlertFilter, Change, SeenAlert
from tokenradar.alert_topic import alerts_consumer, parse_alert
from tokenradar.interrupts import sigterm_as_interrupt
from tokenradar.schemas.alerts import Severity
from tokenradar.schemas.settings import KafkaSecurity

log = logging.getLogger("tokenradar.bridge")

HTTP_TIMEOUT_S = 10.0
SESSION_TIMEOUT_MS = 10_000
"""As the worker's default. kafka-python 3 defaults to 45 s, and Tansu forms a new
group only after half the session timeout: 23 s at each start instead of 5."""


class BridgeSettings(BaseModel):
    """Where alerts go, and which ones; from options, else ``TOKENRADAR_*`` variables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alertmanager_url: str | None = Field(
        None, description="Alertmanager base URL; alerts go to its /api/v2/alerts.")
    webhook_url: str | None = Field(None, description="Slack-style incoming webhook URL.")
    min_severity: Severity = Field("medium", description="Forward alerts at least this severe.")
    group_id: str = Field("tokenradar-bridge", description="The bridge's consumer group.")
    hold_minutes: Annotated[float, Field(gt=0)] = Field(
        240.0, description="Alertmanager resolves an alert this long after its detection.")
    from_beginning: bool = Field(
        False, description="A new group starts at the topic's oldest alert, not its end.")

    ENVIRONMENT: ClassVar[dict[str, str]] = {"alertmanager_url": "TOKENRADAR_ALERTMANAGER_URL",
                   "webhook_url": "TOKENRADAR_WEBHOOK_URL",
                   "min_severity": "TOKENRADAR_MIN_SEVERITY",
                   "group_id": "TOKENRADAR_BRIDGE_GROUP_ID"}

    @field_validator("alertmanager_url", "webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @model_validator(mode="after")
    def _somewhere_to_send(self) -> BridgeSettings:
        if not (self.alertmanager_url or self.webhook_url):
            raise ValueError("give --alertmanager-url or --webhook-url (or both), or "
                             "TOKENRADAR_ALERTMANAGER_URL / TOKENRADAR_WEBHOOK_URL")
        return self

    @classmethod
    def from_sources(cls, options: Mapping[str, Any],
                     environ: Mapping[str, str] | None = None) -> BridgeSettings:
        """Options win over the environment, which wins over defaults."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {name: environ[env] for name, env in cls.ENVIRONMENT.items()
                                  if environ.get(env)}
        values.update({name: value for name, value in options.items()
                       if name in cls.model_fields and value is not None})
        return cls.model_validate(values)


@dataclass(frozen=True)
class Receiver:
    """One place alerts go: its name in logs, its URL, and the body it takes."""

    name: str
    url: str
    body: Callable[[SeenAlert], Any]

    @property
    def where(self) -> str:
        """Scheme and host only: a webhook URL's path is often its secret."""
        parts = urlsplit(self.url)
        return f"{self.name} ({parts.scheme}://{parts.netloc})"


def receivers_of(settings: BridgeSettings) -> list[Receiver]:
    hold = timedelta(minutes=settings.hold_minutes)
    receivers = []
    if settings.alertmanager_url:
        receivers.append(Receiver("alertmanager", alertmanager_url(settings.alertmanager_url),
                                  lambda seen: alertmanager_alerts(seen.alert, hold)))
    if settings.webhook_url:
        receivers.append(Receiver("webhook", settings.webhook_url, lambda seen: webhook_message(
            seen.alert, seen.change, seen.previous_severity)))
    return receivers


def post_json(url: str, body: Any) -> None:
    """POST ``body`` as JSON; raises HTTPError on an answer >= 400, URLError/OSError when
    the receiver cannot be reached."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "tokenradar-bridge"})
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
        response.read()


def deliver(receiver: Receiver, seen: SeenAlert,
            post: Callable[[str, Any], None] = post_json,
            sleep: Callable[[float], None] = time.sleep) -> bool:
    """Send until the receiver takes it (True) or refuses the payload itself (False)."""
    body = receiver.body(seen)
    alert_id = seen.alert.alert_id
    attempt = 0
    while True:
        try:
            post(receiver.url, body)
        except HTTPError as exc:
            status: int | None = exc.code
            problem = f"HTTP {exc.code} {exc.reason}"
        except (URLError, OSError) as exc:
            status = None
            problem = str(getattr(exc, "reason", exc))
        else:
            log.info("delivered alert %s (%s %s, %s) to %s", alert_id, seen.alert.severity,
                     seen.alert.kind, seen.change.value, receiver.where)
            return True
        if not should_retry(status):
            log.error("%s refused alert %s: %s; not retried, as the same payload would be "
                      "refused again", receiver.where, alert_id, problem)
            return False
        attempt += 1
        wait = backoff_seconds(attempt)
        log.warning("alert %s not delivered to %s: %s; retry %d in %.1f s", alert_id,
                    receiver.where, problem, attempt, wait)
        sleep(wait)


def run_bridge(servers: list[str], topic: str, settings: BridgeSettings,
               security: KafkaSecurity | None = None) -> None:
    """Forward alerts until Ctrl-C or SIGTERM."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        level=logging.WARNING)
    log.setLevel(logging.INFO)
    receivers = receivers_of(settings)
    wanted = AlertFilter(min_severity=settings.min_severity)
    feed = AlertFeed()
    with sigterm_as_interrupt():
        consumer = alerts_consumer(servers, topic, group_id=settings.group_id,
                                   from_beginning=settings.from_beginning,
                                   security=security, session_timeout_ms=SESSION_TIMEOUT_MS)
        log.info("forwarding %s alerts of %s (group %s) at or above %s to %s", topic,
                 ",".join(servers), settings.group_id, settings.min_severity,
                 " and ".join(receiver.where for receiver in receivers))
        try:
            while True:
                _forward_batch(consumer, receivers, wanted, feed)
        finally:
            consumer.close()


def _forward_batch(consumer: KafkaConsumer, receivers: list[Receiver], wanted: AlertFilter,
                   feed: AlertFeed) -> None:
    """Deliver what one poll returns, committing each message's offset once delivered."""
    for partition, records in consumer.poll(timeout_ms=1000).items():
        for record in records:
            alert = parse_alert(record)
            if alert is not None:
                seen = feed.see(alert)
                if seen.change is not Change.REPEATED and wanted.accepts(alert):
                    for receiver in receivers:
                        deliver(receiver, seen)
            if not _commit(consumer, partition, record.offset + 1):
                return


def _commit(consumer: KafkaConsumer, partition: TopicPartition, offset: int) -> bool:
    """Commit ``offset`` of ``partition``; False when the group moved on meanwhile (the
    partition may be another bridge's now: the next poll starts from committed offsets)."""
    try:
        consumer.commit({partition: OffsetAndMetadata(offset, "", -1)})
    except CommitFailedError as exc:
        log.warning("offset %d of %s not committed (%s): the group rebalanced while "
                    "delivering; what follows it will be read again", offset, partition, exc)
        return False
    return True
