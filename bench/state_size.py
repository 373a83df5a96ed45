"""Serialized state per user and per team after replaying a file: what the worker's
changelog holds for each (issue 15 aims at <= 1 KB per user). Run::

    .venv/bin/python bench/state_size.py /work/reference/events.jsonl
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from tokenradar.detectors import ScoringEngine, TeamState, UserState
from tokenradar.replay import score_stream
from tokenradar.schemas import DetectorConfig, parse_event


def describe(what: str, sizes: list[int]) -> str:
    ordered = sorted(sizes)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (f"{what}: {len(sizes)}, bytes mean {statistics.fmean(sizes):,.0f}, "
            f"p95 {p95:,}, max {ordered[-1]:,}")


def state_sizes(events: Path) -> tuple[list[int], list[int]]:
    """Stored bytes of every user's and every team's final state after ``events``."""
    engine = ScoringEngine(DetectorConfig())
    with open(events, "rb") as source:
        arrivals = [(parse_event(line), line.decode().strip()) for line in source if line.strip()]
    teams: dict[str, TeamState] = {}
    users: dict[str, UserState] = {}
    for scored in score_stream(arrivals, engine, teams):
        users[scored.event.user_id] = scored.state
    return ([len(state.to_bytes()) for state in users.values()],
            [len(team.to_bytes()) for team in teams.values()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", type=Path)
    args = parser.parse_args()
    users, teams = state_sizes(args.events)
    print(describe("users", users))
    print(describe("teams", teams))


if __name__ == "__main__":
    main()
