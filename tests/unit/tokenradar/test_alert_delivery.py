"""What the bridge sends to Alertmanager and webhooks, and how it retries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.error import HTTPError, URLError

import pytest
from test_alert_feed import alert

from tokenradar.alert_delivery import (
    alertmanager_alerts,
    alertmanager_url,
    backoff_seconds,
    should_retry,
    webhook_message,
)
from tokenradar.alert_feed import AlertFeed, Change
from tokenradar.bridge import BridgeSettings, Receiver, deliver, receivers_of

HOLD = timedelta(hours=4)


def test_an_escalation_keeps_the_alertmanager_labels_so_the_same_alert_is_updated() -> None:
    [first] = alertmanager_alerts(alert(severity="medium", score=0.75), HOLD)
    [worse] = alertmanager_alerts(alert(severity="critical", score=0.97), HOLD)
    assert first["labels"] == worse["labels"]
    assert first["labels"]["alert_id"] == "a1"
    assert "severity" not in first["labels"] and "score" not in first["labels"]
    assert (first["annotations"]["severity"], worse["annotations"]["severity"]) == (
        "medium", "critical")


def test_different_alert_ids_have_different_labels() -> None:
    [one] = alertmanager_alerts(alert("a1"), HOLD)
    [other] = alertmanager_alerts(alert("a2"), HOLD)
    assert one["labels"] != other["labels"]


def test_alertmanager_alert_has_the_api_v2_fields() -> None:
    [posted] = alertmanager_alerts(alert(), HOLD, generator_url="http://grafana/d/x")
    assert set(posted) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    assert posted["startsAt"] == "2026-11-20T19:00:00Z"
    assert posted["endsAt"] == "2026-11-20T23:00:00Z"
    assert posted["labels"] == {"alertname": "TokenRadarAnomaly", "alert_id": "a1",
                                "kind": "spike", "user_id": "ana", "team": "core"}
    assert all(isinstance(value, str) for value in posted["annotations"].values())
    assert "generatorURL" not in alertmanager_alerts(alert(), HOLD)[0]


def test_alertmanager_url_adds_the_api_path_once() -> None:
    assert alertmanager_url("http://am:9093") == "http://am:9093/api/v2/alerts"
    assert alertmanager_url("http://am:9093/") == "http://am:9093/api/v2/alerts"
    assert alertmanager_url("http://am:9093/api/v2/alerts") == "http://am:9093/api/v2/alerts"


def test_webhook_message_has_text_and_the_alert_and_says_escalated() -> None:
    message = webhook_message(alert(severity="high"), Change.ESCALATED, "medium")
    assert message["text"] == ("[HIGH] spike for ana (core), escalated from medium: "
                               "One request used 60,277 tokens.")
    assert message["alert"]["alert_id"] == "a1"
    assert message["change"] == "escalated"
    assert "escalated" not in webhook_message(alert())["text"]


def test_backoff_doubles_from_half_a_second_up_to_a_minute() -> None:
    assert [backoff_seconds(n) for n in range(1, 10)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert backoff_seconds(10_000) == 60.0
    with pytest.raises(ValueError):
        backoff_seconds(0)


@pytest.mark.parametrize(("status", "retried"), [
    (None, True), (500, True), (502, True), (503, True), (429, True), (404, True),
    (401, True), (400, False), (413, False), (422, False)])
def test_which_failures_are_retried(status: int | None, retried: bool) -> None:
    assert should_retry(status) is retried


def _failing(*failures: Exception) -> tuple[list[Any], Any]:
    """A post function that raises each failure in turn, then succeeds."""
    posted: list[Any] = []
    remaining = list(failures)

    def post(url: str, body: Any) -> None:
        posted.append(body)
        if remaining:
            raise remaining.pop(0)

    return posted, post


def _http_error(status: int) -> HTTPError:
    return HTTPError("http://x", status, "error", {}, None)  # type: ignore[arg-type]


def test_deliver_retries_500_and_refused_connections_with_growing_waits() -> None:
    seen = AlertFeed().see(alert())
    posted, post = _failing(URLError(ConnectionRefusedError(111, "refused")),
                            _http_error(500), _http_error(503))
    waits: list[float] = []
    receiver = Receiver("webhook", "http://x", lambda s: webhook_message(s.alert))
    assert deliver(receiver, seen, post=post, sleep=waits.append)
    assert len(posted) == 4
    assert waits == [0.5, 1.0, 2.0]


def test_deliver_gives_up_on_a_refused_payload_without_waiting() -> None:
    seen = AlertFeed().see(alert())
    posted, post = _failing(_http_error(400))
    waits: list[float] = []
    receiver = Receiver("webhook", "http://x", lambda s: webhook_message(s.alert))
    assert not deliver(receiver, seen, post=post, sleep=waits.append)
    assert (len(posted), waits) == (1, [])


def test_bridge_settings_come_from_options_over_environment() -> None:
    environ = {"TOKENRADAR_WEBHOOK_URL": "https://hooks.example/T0/B0/secret",
               "TOKENRADAR_MIN_SEVERITY": "high",
               "TOKENRADAR_ALERTMANAGER_URL": "http://am:9093"}
    settings = BridgeSettings.from_sources({"min_severity": "critical"}, environ)
    assert settings.min_severity == "critical"
    assert [r.name for r in receivers_of(settings)] == ["alertmanager", "webhook"]
    [manager, hook] = receivers_of(settings)
    assert manager.url == "http://am:9093/api/v2/alerts"
    assert "secret" not in hook.where


@pytest.mark.parametrize("options", [{}, {"webhook_url": "ftp://x"},
                                     {"webhook_url": "http://x", "min_severity": "huge"}])
def test_bridge_settings_refuse_nowhere_to_send_and_bad_values(options: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        BridgeSettings.from_sources(options, environ={})
