"""``tokenradar replay`` against a parse-only pass, on the same file, in one run.

Writes a simulated organisation's events (``--users``, ``--days``; or takes
``--input``), then times, each twice, keeping the faster:

- parse only: every line through ``tokenradar.schemas.parse_event`` (the floor any scoring
  pays);
- replay: ``tokenradar.replay.replay_file`` with the default configuration (parse,
  score every event with every detector, write alerts and scores).

Prints events/s for both and their ratio::

    .venv/bin/python bench/bench_replay.py --users 300 --days 28
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


def best_of_two(run: object, *args: object) -> tuple[float, object]:
    timings = []
    result = None
    for _ in range(2):
        started = time.perf_counter()
        result = run(*args)  # type: ignore[operator]
        timings.append(time.perf_counter() - started)
    return min(timings), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, help="events JSONL (default: simulate one)")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--days", type=int, default=28)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        events = args.input
        if events is None:
            events = Path(tmp) / "events.jsonl"
            write_simulation(SimulationSpec(users=args.users, days=args.days), events, None)
        parse_seconds, count = best_of_two(parse_only, events)
        replay_seconds, _ = best_of_two(
            replay_file, events, Path(tmp) / "alerts.jsonl", Path(tmp) / "scores.jsonl")
    assert isinstance(count, int)
    parse_rate, replay_rate = count / parse_seconds, count / replay_seconds
    print(f"events                {count:>12,}")
    print(f"parse only            {parse_rate:>12,.0f} events/s")
    print(f"replay (all scoring)  {replay_rate:>12,.0f} events/s")
    print(f"ratio replay/parse    {replay_rate / parse_rate:>12.2f}")


if __name__ == "__main__":
    main()
