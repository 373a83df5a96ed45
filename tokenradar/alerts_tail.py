"""``tokenradar alerts tail``: follow the alerts topic, one readable line per alert.

Each ``alert_id`` is shown once, and again when its incident escalates (re-published
with a higher severity); a redelivered message is not shown twice. ``--json`` prints
the messages themselves, one per line, for piping.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC

from kafka import KafkaConsumer
from rich.console import Console
from rich.text import Text

from tokenradar.alert_feed import AlertFeed, AlertFilter, Change, SeenAlert
from tokenradar.alert_topic import alerts_consumer, parse_alert
from tokenradar.interrupts import sigterm_as_interrupt
from tokenradar.schemas.settings import KafkaSecurity

SEVERITY_STYLES = {
    "low": "cyan",
    "medium": "yellow",
    "high": "bold red",
    "critical": "bold white on red",
}


def alert_line(seen: SeenAlert) -> Text:
    """``2026-11-20 19:00Z  HIGH      spike  user-0069  ml-research  One request ...``"""
    alert = seen.alert
    line = Text(no_wrap=True)
    line.append(f"{alert.event_time.astimezone(UTC):%Y-%m-%d %H:%M}Z  ", style="dim")
    line.append(f"{alert.severity.upper():<8}", style=SEVERITY_STYLES[alert.severity])
    line.append(f"  {alert.kind:<16} {alert.user_id:<18} {alert.team or '-':<14} ")
    if seen.change is Change.ESCALATED:
        line.append(f"escalated from {seen.previous_severity}: ", style="bold")
    line.append(alert.explanation)
    line.append(f"  [{alert.alert_id[:12]}]", style="dim")
    return line


def tail_alerts(servers: list[str], topic: str, wanted: AlertFilter, from_beginning: bool,
                as_json: bool, console: Console | None = None,
                security: KafkaSecurity | None = None) -> None:
    """Print alerts until Ctrl-C or SIGTERM."""
    console = console or Console(highlight=False, soft_wrap=True)
    with sigterm_as_interrupt():
        consumer = alerts_consumer(servers, topic, group_id=None, from_beginning=from_beginning,
                                   security=security)
        try:
            _print_alerts(consumer, wanted, as_json, console)
        except BrokenPipeError:  # `alerts tail | head`: the reader has had enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        finally:
            consumer.close()


def _print_alerts(consumer: KafkaConsumer, wanted: AlertFilter, as_json: bool,
                  console: Console) -> None:
    feed = AlertFeed()
    for record in consumer:
        alert = parse_alert(record)
        if alert is None:
            continue
        seen = feed.see(alert)  # every alert, so an escalation past a filter shows
        if seen.change is Change.REPEATED or not wanted.accepts(alert):
            continue
        if as_json:
            sys.stdout.write(record.value.decode() + "\n")
            sys.stdout.flush()
        else:
            console.print(alert_line(seen))
            console.file.flush()
