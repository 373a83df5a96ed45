"""How ``alerts tail`` shows an alert: one line, coloured by severity, escalations named."""

from __future__ import annotations

import io

from rich.console import Console
from test_alert_feed import alert

from tokenradar.alert_feed import AlertFeed
from tokenradar.alerts_tail import alert_line


def _render(severity: str, terminal: bool, explanation: str = "Short.") -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, color_system="standard" if terminal
                      else None, width=60, highlight=False, soft_wrap=True)
    console.print(alert_line(AlertFeed().see(alert(severity=severity, explanation=explanation))))
    return out.getvalue()


def test_a_line_names_time_severity_kind_user_team_explanation_and_id() -> None:
    line = _render("high", terminal=False)
    assert line == ("2026-11-20 19:00Z  HIGH      spike            ana                core"
                    "           Short.  [a1]\n")


def test_a_long_explanation_stays_on_one_line() -> None:
    assert _render("low", terminal=False, explanation="word " * 60).count("\n") == 1


def test_each_severity_has_its_own_colour_on_a_terminal() -> None:
    rendered = {severity: _render(severity, terminal=True)
                for severity in ("low", "medium", "high", "critical")}
    assert all("\x1b[" in line for line in rendered.values())
    assert len(set(rendered.values())) == 4
    assert "\x1b[" not in _render("critical", terminal=False)


def test_an_escalation_says_from_which_severity() -> None:
    feed = AlertFeed()
    feed.see(alert(severity="medium"))
    line = alert_line(feed.see(alert(severity="critical", score=0.97))).plain
    assert "CRITICAL" in line and "escalated from medium: One request" in line
