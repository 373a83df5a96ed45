"""Following alerts: new, escalated, repeated; and the reader's filters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tokenradar.alert_feed import SEVERITIES, AlertFeed, AlertFilter, Change
from tokenradar.schemas import AnomalyEvent


def alert(alert_id: str = "a1", severity: str = "medium", **fields: Any) -> AnomalyEvent:
    at = datetime(2026, 11, 20, 19, tzinfo=UTC)
    values: dict[str, Any] = dict(
        alert_id=alert_id, user_id="ana", team="core", kind="spike", detector="spike",
        score=0.75, severity=severity, event_time=at, detected_at=at,
        feature="tokens_per_request", observed=60277.0, expected=5550.5,
        event_ids=["req-1"], explanation="One request used 60,277 tokens.",
        config_version="c76e75fbd2db")
    values.update(fields)
    return AnomalyEvent(**values)


def test_severities_run_from_least_to_most_severe() -> None:
    assert SEVERITIES == ("low", "medium", "high", "critical")


def test_a_redelivered_alert_is_a_repeat() -> None:
    feed = AlertFeed()
    assert feed.see(alert()).change is Change.NEW
    assert feed.see(alert()).change is Change.REPEATED


def test_a_higher_severity_under_the_same_id_is_an_escalation_from_the_highest_seen() -> None:
    feed = AlertFeed()
    feed.see(alert(severity="low"))
    first = feed.see(alert(severity="high", score=0.9))
    assert (first.change, first.previous_severity) == (Change.ESCALATED, "low")
    second = feed.see(alert(severity="critical", score=0.97))
    assert (second.change, second.previous_severity) == (Change.ESCALATED, "high")


def test_a_same_or_lower_severity_republication_is_a_repeat() -> None:
    feed = AlertFeed()
    feed.see(alert(severity="high"))
    later = datetime(2026, 11, 20, 20, tzinfo=UTC)  # a worker re-scoring after a restart
    assert feed.see(alert(severity="high", detected_at=later)).change is Change.REPEATED
    assert feed.see(alert(severity="medium")).change is Change.REPEATED


def test_the_feed_forgets_the_oldest_ids_beyond_its_memory() -> None:
    feed = AlertFeed(memory=2)
    for alert_id in ("a", "b", "c"):
        feed.see(alert(alert_id))
    assert feed.see(alert("c")).change is Change.REPEATED
    assert feed.see(alert("a")).change is Change.NEW


def test_filter_by_minimum_severity_kind_and_team() -> None:
    wanted = AlertFilter(min_severity="high", kinds={"spike", "gaming"}, teams={"core"})
    assert wanted.accepts(alert(severity="high"))
    assert wanted.accepts(alert(severity="critical", kind="gaming"))
    assert not wanted.accepts(alert(severity="medium"))
    assert not wanted.accepts(alert(severity="high", kind="drift"))
    assert not wanted.accepts(alert(severity="high", team="payments"))
    assert not wanted.accepts(alert(severity="high", team=None))
    assert AlertFilter().accepts(alert(severity="low", team=None, kind="creep"))
