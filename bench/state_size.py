"""Serialized state per user and per team after replaying a file: what the worker's
changelog holds for each (issue 15 aims at <= 1 KB per user), and with ``--breakdown``
what those bytes are: the mean stored bytes of each field, each detector's slot and each
field of the usage context and the slots, beside the bytes the same part weighs decoded,
as Python objects (what each of the users kept decoded costs: ``LIVE_STATES``). Run::

    .venv/bin/python bench/state_size.py /work/reference/events.jsonl --breakdown
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenradar.detectors import ScoringEngine, TeamState, UserState
from tokenradar.detectors.engine import detector_slot
from tokenradar.detectors.records import Record, record_bytes
from tokenradar.replay import score_stream
from tokenradar.schemas import DetectorConfig, parse_event


def describe(what: str, sizes: list[int]) -> str:
    ordered = sorted(sizes)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (f"{what}: {len(sizes)}, bytes mean {statistics.fmean(sizes):,.0f}, "
            f"p95 {p95:,}, max {ordered[-1]:,}")


def final_states(events: Path) -> tuple[list[UserState], list[TeamState]]:
    """Every user's and every team's final state after ``events``, as replay leaves them."""
    engine = ScoringEngine(DetectorConfig())
    with open(events, "rb") as source:
        arrivals = [(parse_event(line), line.decode().strip()) for line in source if line.strip()]
    teams: dict[str, TeamState] = {}
    users: dict[tuple[str | None, str], UserState] = {}
    for scored in score_stream(arrivals, engine, teams):
        users[scored.event.team, scored.event.user_id] = scored.state
    for state in users.values():  # every slot as a record, as a scored user's are
        for detector in engine.detectors:
            if detector.name in state.slots:
                detector_slot(state, detector)
    return list(users.values()), list(teams.values())


def state_sizes(events: Path) -> tuple[list[int], list[int]]:
    """Stored bytes of every user's and every team's final state after ``events``."""
    users, teams = final_states(events)
    return [len(state.to_bytes()) for state in users], [len(team.to_bytes()) for team in teams]


def decoded_bytes(value: Any) -> int:
    """What ``value`` weighs as Python objects, its parts included (``sys.getsizeof``; the
    small integers and singletons every process shares count nothing)."""
    if value is None or isinstance(value, bool) or (type(value) is int and -5 <= value <= 256):
        return 0
    size = sys.getsizeof(value)
    if isinstance(value, Record):
        size += sum(decoded_bytes(getattr(value, name)) for name in value.__struct_fields__)
    elif isinstance(value, dict):
        size += sum(decoded_bytes(key) + decoded_bytes(item) for key, item in value.items())
    elif isinstance(value, list | tuple):
        size += sum(decoded_bytes(item) for item in value)
    return size


def field_bytes(value: Any, path: str, into: dict[str, list[int]], depth: int) -> None:
    """Add the stored and the decoded bytes of ``value`` under ``path``, and of its parts
    ``depth`` deep: a record's fields, a dict's values by key (a slot by its detector's
    name)."""
    into[path][0] += len(record_bytes(value))
    into[path][1] += decoded_bytes(value)
    if depth == 0:
        return
    if isinstance(value, Record):
        for name in value.__struct_fields__:
            field_bytes(getattr(value, name), f"{path}.{name}", into, depth - 1)
    elif isinstance(value, dict) and path.endswith(".slots"):
        for name, slot in value.items():
            field_bytes(slot, f"{path}[{name}]", into, depth - 1)


def breakdown(states: Iterable[Record], depth: int) -> list[tuple[str, float, float]]:
    """Mean stored and decoded bytes of each part of ``states``, in stored order (a part's
    own bytes include its parts', and the few bytes of its array or map header)."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    count = 0
    for state in states:
        field_bytes(state, type(state).__name__, totals, depth)
        count += 1
    return [(path, stored / count, decoded / count)
            for path, (stored, decoded) in totals.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", type=Path)
    parser.add_argument("--breakdown", action="store_true",
                        help="the mean bytes of each field, slot and slot field")
    parser.add_argument("--depth", type=int, default=4, help="how deep to break down")
    args = parser.parse_args()
    users, teams = final_states(args.events)
    print(describe("users", [len(state.to_bytes()) for state in users]))
    print(describe("teams", [len(team.to_bytes()) for team in teams]))
    if args.breakdown:
        for what, states in (("user", users), ("team", teams)):
            print(f"\nmean bytes per {what} state, by field:\n   stored   decoded")
            for path, stored, decoded in breakdown(states, args.depth):
                indent = "  " * (path.count(".") + path.count("["))
                print(f"{stored:9,.1f} {decoded:9,.1f}  {indent}{path.rsplit('.', 1)[-1]}")


if __name__ == "__main__":
    main()
