"""The fuzz run: hostile messages through a real worker, with its figures.

Starts a broker (``TOKENRADAR_BROKER``, else Docker, else embedded Tansu) and a worker,
sends ``--messages`` hostile messages (:mod:`tokenradar.lab.hostile`: non-UTF-8,
invalid JSON, deep nesting, messages of megabytes, NaN, absurd token counts, odd
timestamps, duplicates, null and binary keys, prompt text in extra fields), waits until
each is scored, dropped as a duplicate or dead-lettered, and prints the accounting, the
worker's memory and where the planted canary came out (nowhere, it should). Exits 1 if
anything is off. Run::

    .venv/bin/python bench/fuzz.py --messages 10000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tokenradar.lab.brokers import kafka_broker
from tokenradar.lab.fuzz import run_fuzz
from tokenradar.lab.hostile import DUPLICATE, SCORED


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--huge-every", type=int, default=1000,
                        help="one message of megabytes every this many (0: none)")
    args = parser.parse_args()
    with kafka_broker() as url, tempfile.TemporaryDirectory() as workdir:
        report = run_fuzz(url, args.messages, Path(workdir), args.seed, args.huge_every)
        print(report.describe())
        due_dead = report.sent - report.due[SCORED] - report.due[DUPLICATE]
        counts = report.outcomes
        problems = [
            problem for problem, failed in (
                ("not every message accounted for exactly once", report.accounted != report.sent),
                ("scored differs from due", counts.get("scored", 0) + counts.get("late", 0)
                 != report.due[SCORED]),
                ("dead letters differ from due", report.dead_letters.total() != due_dead),
                ("the canary leaked", bool(report.leaks)),
                ("the canary was not even planted", report.planted == 0),
                ("the worker stopped", not report.alive or report.healthz != 200),
            ) if failed]
        for problem in problems:
            print(f"FAILED: {problem}", file=sys.stderr)
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
