"""The fuzz run in CI: 10,000 hostile messages through a real worker (issue 14, item 3).

Every message is scored, dropped as a duplicate or dead-lettered with its due error
type, exactly once; the worker keeps running and its memory stays bounded; the canary
planted in fields outside the contract comes out nowhere. ``make fuzz`` runs the same
with its figures printed (bench/fuzz.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from worker_harness import Topics, Worker, read_topic, send_by_route

from tokenradar.lab.fuzz import run_fuzz
from tokenradar.lab.hostile import DUPLICATE, SCORED
from tokenradar.lab.simulation import SimulationSpec, simulate
from tokenradar.replay import replay_file
from tokenradar.schemas import AnomalyEvent, DeadLetter

MESSAGES = 10_000
RSS_GROWTH_MB = 150
"""Most the worker's memory may grow over the run, from when it was ready: the states of
40 users, their buffers and a few multi-megabyte messages in flight (about 30 to 40 MB
here)."""


def test_every_hostile_message_is_accounted_for_and_no_input_text_leaks(
        broker_url: str, tmp_path: Path) -> None:
    report = run_fuzz(broker_url, MESSAGES, tmp_path, seed=14)
    print(report.describe())  # the figures, with -s
    counts = report.outcomes
    assert report.accounted == MESSAGES, report.describe()
    assert counts["scored"] + counts["late"] == report.due[SCORED]
    assert counts["duplicate"] == report.due[DUPLICATE]
    due_dead = {fate: n for fate, n in report.due.items() if fate not in (SCORED, DUPLICATE)}
    assert dict(report.dead_letters) == due_dead
    assert counts["dead_lettered"] == sum(due_dead.values())
    assert report.alerts > 0  # something was scored for real
    assert report.alive and report.healthz == 200
    assert report.planted > 1000 and report.leaks == [], report.describe()
    rss = report.rss_mb[report.ready_sample:]
    assert max(rss) - rss[0] < RSS_GROWTH_MB, report.describe()


def test_events_dated_9999_are_dead_lettered_and_the_worker_alerts_as_replay_of_the_rest(
        broker_url: str, topics: Topics, start_worker: Callable[..., Worker],
        tmp_path: Path) -> None:
    """Finding 4 of issue 14 on a real worker: one event per user dated 9999-12-31,
    keyed as the others, is dead-lettered as ``future``; the alerts are those replay
    gives the file without them (and with them: replay skips them alike)."""
    events, _ = simulate(SimulationSpec(users=24, teams=3, days=12, seed=3,
                                        incidents_per_kind=1, shifted_teams=1))
    users = sorted({str(event["user_id"]) for event in events})
    hostile = list(events)
    for number, user in enumerate(users):
        template = next(event for event in events if event["user_id"] == user)
        far = {**template, "event_id": f"far-{user}", "timestamp": "9999-12-31T23:59:59Z"}
        hostile.insert((number + 1) * len(events) // (4 * len(users) + 1), far)
    clean_path, hostile_path = tmp_path / "clean.jsonl", tmp_path / "hostile.jsonl"
    clean_path.write_text("".join(json.dumps(event) + "\n" for event in events))
    hostile_path.write_text("".join(json.dumps(event) + "\n" for event in hostile))
    clean = replay_file(clean_path, tmp_path / "clean-alerts.jsonl")
    replayed = replay_file(hostile_path, tmp_path / "hostile-alerts.jsonl")
    expected = (tmp_path / "clean-alerts.jsonl").read_text().splitlines()
    assert expected and (tmp_path / "hostile-alerts.jsonl").read_text().splitlines() == expected
    assert replayed.invalid == len(users)

    send_by_route(broker_url, topics.input, hostile)
    worker = start_worker(topics)
    worker.wait_for_events("scored", clean.events)
    worker.wait_for_events("dead_lettered", len(users))
    records = read_topic(broker_url, topics.alerts, count=len(expected))
    letters = read_topic(broker_url, topics.dlq, count=len(users))

    def comparable(lines: list[bytes] | list[str]) -> list[tuple[str, str, str, str]]:
        alerts = [AnomalyEvent.model_validate_json(line) for line in lines]
        return sorted((a.alert_id, a.user_id, a.kind, a.event_time.isoformat()) for a in alerts)

    assert comparable([record.value for record in records]) == comparable(expected)
    assert {DeadLetter.model_validate_json(r.value).error_type for r in letters} == {"future"}
    assert worker.events("dead_lettered") == len(users)
