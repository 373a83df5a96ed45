"""``tokenradar replay`` against a parse-only pass, on the same file, in one run.

Writes a simulated organisation's events (``--users``, ``--days``; or takes
``--input``), then times, interleaved ``--rounds`` times (this machine's speed drifts):

- parse only: every line through ``tokenradar.schemas.parse_event`` (the floor any scoring
  pays);
- replay: ``tokenradar.replay.replay_file`` with the default configuration (parse,
  score every event with every detector, write alerts and scores).

Prints events/s for both and their ratio, each round::

    .venv/bin/python bench/bench_replay.py --users 400 --days 28
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tokenradar.lab.simulation import SimulationSpec, write_simulation
from tokenradar.replay import replay_file
from tokenradar.schemas import parse_event


def parse_only(path: Path) -> int:
    count = 0
    with open(path, "rb") as source:
        for line in source:
            parse_event(line)
            count += 1
    return count


def measure(events: Path, rounds: int, folder: Path) -> list[tuple[float, float]]:
    """(parse-only events/s, replay events/s) of each round, the two interleaved."""
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        count = parse_only(events)
        parse_rate = count / (time.perf_counter() - started)
        started = time.perf_counter()
        replay_file(events, folder / "alerts.jsonl", folder / "scores.jsonl")
        rates.append((parse_rate, count / (time.perf_counter() - started)))
    return rates


def simulated(users: int, days: int, folder: Path) -> Path:
    """A simulated organisation's events (``tokenradar simulate``'s, default seed)."""
    events = folder / f"events-{users}-{days}.jsonl"
    write_simulation(SimulationSpec(users=users, days=days), events, None)
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, help="events JSONL (default: simulate one)")
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        events = args.input or simulated(args.users, args.days, Path(tmp))
        with open(events, "rb") as source:
            print(f"events                {sum(1 for _ in source):>12,}")
        for parse_rate, replay_rate in measure(events, args.rounds, Path(tmp)):
            print(f"parse only            {parse_rate:>12,.0f} events/s")
            print(f"replay (all scoring)  {replay_rate:>12,.0f} events/s")
            print(f"ratio replay/parse    {replay_rate / parse_rate:>12.2f}")


if __name__ == "__main__":
    main()
