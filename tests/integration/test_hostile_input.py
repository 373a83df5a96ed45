"""The fuzz run in CI: 10,000 hostile messages through a real worker (issue 14, item 3).

Every message is scored, dropped as a duplicate or dead-lettered with its due error
type, exactly once; the worker keeps running and its memory stays bounded; the canary
planted in fields outside the contract comes out nowhere. ``make fuzz`` runs the same
with its figures printed (bench/fuzz.py).
"""

from __future__ import annotations

from pathlib import Path

from tokenradar.lab.fuzz import run_fuzz
from tokenradar.lab.hostile import DUPLICATE, SCORED

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
