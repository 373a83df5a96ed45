"""The least Python a scored event costs, against ``replay``, on the same file, in one run.

Issue 15 asks for 100,000 events/s from replay (10 us an event). This measures, in CPU
seconds of this process, interleaved ``--rounds`` times (the machine's speed drifts):

- parse only: every line through ``tokenradar.schemas.parse_event``;
- floor: parse, find the user's state in a dict, and for each detector that must see
  every event (the default configuration's) one method call that updates one
  :class:`~tokenradar.detectors.baseline.EWStats` and compares a score with the
  threshold: far less than any detector does (each reads the user's context, which
  must be advanced first, and most keep several baselines), so a bound from below;
- replay: ``tokenradar.replay.replay_file`` with the default configuration.

Prints microseconds an event for each, and the Python calls an event replay makes
(``--calls``: one profiled pass of replay, slower)::

    .venv/bin/python bench/bench_floor.py --users 400 --days 28 --calls
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from bench_replay import parse_only, simulated

from tokenradar.detectors.baseline import EWStats
from tokenradar.detectors.registry import build_detectors
from tokenradar.replay import replay_file
from tokenradar.schemas import DetectorConfig, parse_event


class LeastDetector:
    """What a detector that sees every event does at the least: learn one number of the
    user, and say whether it alerts."""

    def observe(self, slot: EWStats, tokens: float) -> bool:
        slot.update(tokens, 0.05)
        return slot.mean > 1e12


def floor(path: Path, detectors: int) -> int:
    """Parse, find the user's state, and the least work of each detector."""
    least = [LeastDetector() for _ in range(detectors)]
    states: dict[str, list[EWStats]] = {}
    count = 0
    with open(path, "rb") as source:
        for line in source:
            event = parse_event(line)
            slots = states.get(event.user_id)
            if slots is None:
                slots = states[event.user_id] = [EWStats() for _ in least]
            tokens = float(event.input_tokens + event.output_tokens)
            for detector, slot in zip(least, slots, strict=True):
                detector.observe(slot, tokens)
            count += 1
    return count


def replay(path: Path, folder: Path) -> int:
    return replay_file(path, folder / "alerts.jsonl", folder / "scores.jsonl").events


def calls_per_event(path: Path, folder: Path) -> float:
    profile = cProfile.Profile()
    events = profile.runcall(replay, path, folder)
    return pstats.Stats(profile).total_calls / events  # type: ignore[attr-defined]


def cpu_us_per_event(run: object, *args: object) -> float:
    started = time.process_time()
    count = run(*args)  # type: ignore[operator]
    return (time.process_time() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, help="events JSONL (default: simulate one)")
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", action="store_true", help="also count replay's calls")
    args = parser.parse_args()
    detectors = len(build_detectors(DetectorConfig()).users)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        events = args.input or simulated(args.users, args.days, folder)
        print(f"detectors seeing every event  {detectors:>8}")
        for _ in range(args.rounds):
            parse = cpu_us_per_event(parse_only, events)
            least = cpu_us_per_event(floor, events, detectors)
            whole = cpu_us_per_event(replay, events, folder)
            print(f"parse only                    {parse:>8.1f} us/event CPU "
                  f"({1e6 / parse:>9,.0f} events/s)")
            print(f"floor (parse + least work)    {least:>8.1f} us/event CPU "
                  f"({1e6 / least:>9,.0f} events/s)")
            print(f"replay                        {whole:>8.1f} us/event CPU "
                  f"({1e6 / whole:>9,.0f} events/s)")
        if args.calls:
            print(f"replay's Python calls         {calls_per_event(events, folder):>8.0f} "
                  "per event (cProfile: functions and built-ins)")


if __name__ == "__main__":
    main()
