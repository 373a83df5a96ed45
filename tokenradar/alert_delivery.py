"""What the bridge sends, and when it tries again: no Kafka, no HTTP here.

Alertmanager identifies an alert by the fingerprint of its labels. The labels are
what an ``alert_id`` fixes (the id itself, its kind, its user, its team), so an
escalation, re-posted under the same ``alert_id``, updates the same Alertmanager
alert. Severity and score change as an incident escalates: they are annotations, not
labels (route on ``kind`` and ``team``; the bridge's ``--min-severity`` gates severity).
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from tokenradar.alert_feed import Change
from tokenradar.schemas.alerts import AnomalyEvent

ALERTNAME = "TokenRadarAnomaly"
ALERTMANAGER_PATH = "/api/v2/alerts"


def alertmanager_url(base: str) -> str:
    """``http://am:9093`` -> ``http://am:9093/api/v2/alerts``; a full URL is kept."""
    base = base.rstrip("/")
    return base if base.endswith(ALERTMANAGER_PATH) else base + ALERTMANAGER_PATH


def alertmanager_labels(alert: AnomalyEvent) -> dict[str, str]:
    """The identity of the alert in Alertmanager: the same for every message of an id."""
    labels = {"alertname": ALERTNAME, "alert_id": alert.alert_id, "kind": alert.kind,
              "user_id": alert.user_id}
    if alert.team:
        labels["team"] = alert.team
    return labels


def alertmanager_alerts(alert: AnomalyEvent, hold: timedelta,
                        generator_url: str | None = None) -> list[dict[str, Any]]:
    """The body of ``POST /api/v2/alerts`` for one alert.

    ``endsAt`` is ``hold`` after detection (by default the detectors' cooldown, the time
    an incident stays open and may escalate): Alertmanager then resolves it.
    """
    posted: dict[str, Any] = {
        "labels": alertmanager_labels(alert),
        "annotations": {
            "summary": summary(alert),
            "description": alert.explanation,
            "severity": alert.severity,
            "score": f"{alert.score:.3f}",
            "detector": alert.detector,
            "feature": alert.feature,
            "observed": f"{alert.observed:g}",
            "expected": f"{alert.expected:g}",
            "config_version": alert.config_version,
        },
        "startsAt": _rfc3339(alert.event_time),
        "endsAt": _rfc3339(alert.detected_at + hold),
    }
    if generator_url:
        posted["generatorURL"] = generator_url
    return [posted]


def summary(alert: AnomalyEvent, change: Change = Change.NEW,
            previous_severity: str | None = None) -> str:
    """``[HIGH] spike for user-0069 (ml-research)``; an escalation says from what."""
    team = f" ({alert.team})" if alert.team else ""
    escalated = (f", escalated from {previous_severity}"
                 if change is Change.ESCALATED and previous_severity else "")
    return f"[{alert.severity.upper()}] {alert.kind} for {alert.user_id}{team}{escalated}"


def webhook_message(alert: AnomalyEvent, change: Change = Change.NEW,
                    previous_severity: str | None = None) -> dict[str, Any]:
    """A Slack-style ``{"text": ...}`` with the whole alert alongside, for other receivers."""
    return {
        "text": f"{summary(alert, change, previous_severity)}: {alert.explanation}",
        "alert": alert.model_dump(mode="json"),
        "change": change.value,
    }


def backoff_seconds(attempt: int, first: float = 0.5, factor: float = 2.0,
                    longest: float = 60.0) -> float:
    """The wait before retry number ``attempt`` (1, 2, ...): 0.5, 1, 2, 4 ... up to 60 s.

    >>> [backoff_seconds(n) for n in (1, 2, 3, 8, 9, 50)]
    [0.5, 1.0, 2.0, 60.0, 60.0, 60.0]
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    return min(longest, first * factor ** min(attempt - 1, 64))


PAYLOAD_REFUSED = frozenset({400, 413, 415, 422})
"""Answers that refuse the payload itself: sending it again cannot help."""


def should_retry(status: int | None) -> bool:
    """Retry a connection error (``None``) and any answer but success or a refused payload:
    a 5xx, but also a wrong token (401) or a receiver not deployed yet (404), which an
    operator fixes while the bridge waits, rather than dropping alerts meanwhile."""
    return status is None or (status >= 300 and status not in PAYLOAD_REFUSED)


def _rfc3339(moment: Any) -> str:
    return str(moment.astimezone(UTC).isoformat().replace("+00:00", "Z"))
