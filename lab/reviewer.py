"""A reviewer who knows the labels: the verdicts people would give on a backtest's alerts.

``tokenradar evaluate --verdicts-out`` writes them, ``replay --feedback`` applies them, and
``evaluate --alerts-with-feedback`` compares the two runs: how much precision the loop
of people's verdicts buys, and what recall it costs (a silence also hides a real
incident of its user and kind until it ends).

Each alert, in event-time order, is judged an hour after it (``REVIEW_DELAY``): ``true``
when it matches an incident label, ``expected`` when it falls on a benign label (a new
joiner, an adoption: right, but normal), ``false`` otherwise; the two latter silence its
user and kind for ``SILENCE``. An alert inside a silence the reviewer already gave is not
judged: with the verdicts applied it would not have been raised.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from tokenradar.lab.evaluate import IncidentLabel, evaluate
from tokenradar.schemas import AnomalyEvent
from tokenradar.schemas.feedback import FeedbackVerdict

REVIEW_DELAY = timedelta(hours=1)
SILENCE = timedelta(days=14)


def review(labels: Iterable[IncidentLabel], alerts: Iterable[AnomalyEvent],
           delay: timedelta = REVIEW_DELAY, silence: timedelta = SILENCE
           ) -> list[FeedbackVerdict]:
    """The verdicts on ``alerts`` (one per ``alert_id``), in the order given."""
    labels = list(labels)
    alerts = sorted(alerts, key=lambda alert: alert.event_time)
    evaluation = evaluate(labels, alerts, None)
    incidents = {alert.alert_id for outcome in evaluation.outcomes for alert in outcome.alerts}
    benign = evaluation.benign_labels
    verdicts: list[FeedbackVerdict] = []
    judged: set[str] = set()
    for alert in alerts:
        if alert.alert_id in judged or any(
                v.user_id == alert.user_id and v.kind == alert.kind and v.until is not None
                and v.timestamp <= alert.event_time < v.until for v in verdicts):
            continue
        judged.add(alert.alert_id)
        if alert.alert_id in incidents:
            value, until = "true", None
        else:
            on_benign = any(alert.user_id in (label.user_id, *label.members)
                            and label.window()[0] <= alert.event_time <= label.window()[1]
                            for label in benign)
            value = "expected" if on_benign else "false"
            until = alert.event_time + delay + silence
        verdicts.append(FeedbackVerdict(
            alert_id=alert.alert_id, verdict=value, user_id=alert.user_id,  # type: ignore[arg-type]
            team=alert.team, kind=alert.kind, timestamp=alert.event_time + delay, until=until,
            note="simulated reviewer (labels)"))
    return verdicts
