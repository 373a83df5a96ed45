"""``tokenradar alerts tail`` on a real broker: readable lines, escalations, no repeats,
filters, and ``--json`` passing the messages through unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cli_harness import Command, alert_message, make_alert, produce_alerts
from worker_harness import (
    Topics,
    huge_request,
    read_topic,
    send_events,
    steady_usage,
)

from tokenradar.schemas import AnomalyEvent
from tokenradar.streams.broker import create_topics

pytestmark = pytest.mark.integration

OPENED = alert_message(make_alert("a1", "medium"))
MESSAGES = [
    OPENED,
    OPENED,  # redelivered: shown once
    alert_message(make_alert("a2", "low", kind="gaming", user="bob", team="payments")),
    alert_message(make_alert("a1", "critical")),  # the same incident, worse
    alert_message(make_alert("a1", "high")),  # lower than seen: nothing new
    alert_message(make_alert("a3", "high", kind="runaway_agent", user="cy")),
    b"{not an alert",
    alert_message(make_alert("z9", "critical", kind="gaming", user="last")),  # passes every filter
]


@pytest.fixture(scope="module")
def alerts_topic(broker_url: str) -> str:
    topic = f"alerts-{uuid.uuid4().hex[:10]}"
    create_topics(broker_url, [topic], partitions=1)  # one partition: a fixed order
    produce_alerts(broker_url, topic, MESSAGES)
    return topic


def _tail(broker_url: str, topic: str, tmp_path: Path, *options: str) -> Command:
    return Command(["alerts", "tail", "--broker", broker_url, "--topic", topic,
                    "--from-beginning", *options], tmp_path / f"tail-{uuid.uuid4().hex}.log")


def _lines_until_last(command: Command) -> list[str]:
    """Every line up to the last message's (z9): all that came before it was read."""
    try:
        command.wait_for(lambda: any("[z9]" in line for line in command.lines))
    finally:
        assert command.stop() == 130  # stopped by SIGTERM, as by Ctrl-C
    return command.lines


@pytest.mark.parametrize(("options", "shown"), [
    ((), [("a1", "MEDIUM"), ("a2", "LOW"), ("a1", "CRITICAL"), ("a3", "HIGH"),
          ("z9", "CRITICAL")]),
    (("--severity", "high"), [("a1", "CRITICAL"), ("a3", "HIGH"), ("z9", "CRITICAL")]),
    (("--team", "core"), [("a1", "MEDIUM"), ("a1", "CRITICAL"), ("a3", "HIGH"),
                          ("z9", "CRITICAL")]),
    (("--kind", "gaming", "--kind", "spike"), [("a1", "MEDIUM"), ("a2", "LOW"),
                                               ("a1", "CRITICAL"), ("z9", "CRITICAL")]),
])
def test_tail_shows_each_alert_once_and_escalations_as_such(
        broker_url: str, alerts_topic: str, tmp_path: Path, options: tuple[str, ...],
        shown: list[tuple[str, str]]) -> None:
    command = _tail(broker_url, alerts_topic, tmp_path, *options)
    lines = _lines_until_last(command)
    assert [(line.split("[")[-1].rstrip("]"), line.split()[2]) for line in lines] == shown
    escalation = next(line for line in lines if "[a1]" in line and "CRITICAL" in line)
    assert "escalated from medium: Alert a1" in escalation
    assert "offset 6: not an alert" in command.log()
    assert "Traceback" not in command.log()


def test_tail_json_prints_the_messages_unchanged(
        broker_url: str, alerts_topic: str, tmp_path: Path) -> None:
    command = _tail(broker_url, alerts_topic, tmp_path, "--json", "--kind", "gaming")
    try:
        command.wait_for(lambda: len(command.lines) >= 2)
    finally:
        command.stop()
    assert [line.encode() for line in command.lines] == [MESSAGES[2], MESSAGES[-1]]
    assert json.loads(command.lines[0])["alert_id"] == "a2"


def test_tail_piped_into_head_ends_quietly_at_its_next_line(broker_url: str) -> None:
    topic = f"alerts-{uuid.uuid4().hex[:10]}"
    create_topics(broker_url, [topic], partitions=1)
    produce_alerts(broker_url, topic, [MESSAGES[0]])
    tail = subprocess.Popen(
        [sys.executable, "-m", "tokenradar", "alerts", "tail", "--broker", broker_url,
         "--topic", topic, "--from-beginning", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert tail.stdout is not None
    try:
        first = tail.stdout.readline()
        tail.stdout.close()  # as `head -n 1` does after its line
        produce_alerts(broker_url, topic, [MESSAGES[2]])  # the write that finds no reader
        _, errors = tail.communicate(timeout=30)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()
    assert first == MESSAGES[0] + b"\n"
    assert tail.returncode == 0
    assert b"Traceback" not in errors


def test_tail_shows_a_running_workers_alert(broker_url: str, topics: Topics, start_worker,
                                            tmp_path: Path) -> None:
    events = [*steady_usage("user-0"), huge_request("user-0")]
    send_events(broker_url, topics.input, events, key=b"platform")
    worker = start_worker(topics)
    worker.wait_for_events("scored", len(events))
    command = _tail(broker_url, topics.alerts, tmp_path)
    try:
        command.wait_for(lambda: len(command.lines) >= 1)
    finally:
        command.stop()
    [record] = read_topic(broker_url, topics.alerts, count=1)
    alert = AnomalyEvent.model_validate_json(record.value)
    [line] = command.lines
    assert line.split()[2:6] == [alert.severity.upper(), "spike", "user-0", "platform"]
    assert line.endswith(f"{alert.explanation}  [{alert.alert_id[:12]}]")
