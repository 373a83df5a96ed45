"""``make bench``: every figure of issue 15 beside a baseline measured in the same run,
as ratios, in one table (figure, tokenradar, baseline, ratio, target, met?).

On one broker (``TOKENRADAR_BROKER``, else Docker, else embedded Tansu), each
measurement ``--rounds`` times, interleaved with its baseline (this machine's speed
drifts and other work shares its cores); a cell shows each round, ``a / b``, and a target
is met when every round meets it:

- pipelines.py: the worker, the worker of ``--before`` (the commit issue 15 started
  from), the bare Faust agent, a Faust agent with state in a Table and a raw aiokafka
  loop, on ``--events`` events of ``--users`` users: steady events/s, CPU s per 100k
  events, peak RSS, resident memory per user; start to first event scored;
- bench_replay.py: replay against parse-only on a simulated 400-person, 28-day
  organisation; state_size.py: the stored state per user after it;
- bench_user_memory.py (when present): resident memory per user as replay and the worker
  hold ``--memory-users`` users, against holding every user decoded;
- bench_latency.py: production to alert at ``--rate`` events/s offered, steadily, then at
  ``--sustained`` times the rate the worker took (a rate it keeps up with);
- bench_scale.py: two workers on 8 partitions against one; a worker added and one removed
  mid-run, every message accounted for.

Run (about 15 minutes with the defaults on two cores shared with other work;
``--quick`` for a smoke run)::

    .venv/bin/python bench/suite.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bench_latency
import bench_replay
import bench_scale
import pipelines
from state_size import state_sizes

from tokenradar.lab.brokers import kafka_broker

BENCH = Path(__file__).resolve().parent
USER_MEMORY = BENCH / "bench_user_memory.py"
"""The memory helper's per-user bench; its rows are left out where it is absent."""
BEFORE_ISSUE_15 = "e252902"


@dataclass
class Row:
    """One figure: tokenradar's value and its baseline's, each round."""

    figure: str
    mine: list[float]
    baseline_name: str
    baseline: list[float]
    form: str = ",.0f"
    target: str = ""
    meets: Callable[[float, float], bool] | None = None
    """(tokenradar's value, ratio) -> met; None: no target, a figure to read."""
    note: list[str] = field(default_factory=list)

    def cells(self) -> list[str]:
        def joined(values: Sequence[float], form: str) -> str:
            return " / ".join(format(value, form) for value in values) or "-"

        ratios = [m / b if b else float("nan") for m, b in zip(self.mine, self.baseline,
                                                               strict=False)]
        if self.meets is None:
            met = ""
        else:
            hits = [self.meets(m, r) for m, r in zip(self.mine, ratios, strict=False)]
            met = "yes" if all(hits) else "no" if not any(hits) else f"{sum(hits)}/{len(hits)}"
        return [self.figure, joined(self.mine, self.form),
                f"{joined(self.baseline, self.form)} {self.baseline_name}".strip(),
                joined(ratios, ".2f") + "x" if ratios else "-", self.target, met]


def table(rows: list[Row]) -> str:
    """A Markdown table (pastes into an issue, reads in a terminal)."""
    header = ["figure", "tokenradar", "baseline (same run)", "ratio", "target", "met?"]
    lines = [header, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
            for line in lines]
    text.insert(1, " | ".join("-" * width for width in widths))
    return "\n".join(f"| {line} |" for line in text)


def pipeline_rows(runs: dict[str, list[pipelines.Run]], users: int) -> list[Row]:
    def of(name: str, key: str) -> list[float]:
        return [getattr(run, key) for run in runs.get(name, [])]

    worker = of("worker", "events_per_s")
    rows = [Row(f"worker events/s, steady ({users:,} users)", worker, "bare Faust agent",
                of("bare agent", "events_per_s"), target=">= 3x bare agent",
                meets=lambda _, ratio: ratio >= 3)]
    if pipelines.BEFORE in runs:
        rows.append(Row("worker events/s against the worker before", worker,
                        f"worker at {BEFORE_ISSUE_15}", of(pipelines.BEFORE, "events_per_s"),
                        target=">= 10x", meets=lambda _, ratio: ratio >= 10))
    rows += [
        Row("worker events/s against a Table agent", worker, "Faust agent + Table",
            of("table agent", "events_per_s")),
        Row("worker events/s against the Python limit", worker, "raw aiokafka loop",
            of("raw loop", "events_per_s")),
        Row("worker CPU s per 100k events", of("worker", "cpu_s_per_100k"), "bare Faust agent",
            of("bare agent", "cpu_s_per_100k"), ",.1f"),
        Row("worker peak RSS (MiB)", of("worker", "peak_rss_mib"), "bare Faust agent",
            of("bare agent", "peak_rss_mib")),
        Row(f"worker resident bytes per user ({users:,} users, live)",
            [kib * 1024 for kib in of("worker", "rss_per_user_kib")], "Faust agent + Table",
            [kib * 1024 for kib in of("table agent", "rss_per_user_kib")], target="<= 4,000",
            meets=lambda value, _: value <= 4000),
        Row("start to first event scored (s)", of("worker", "startup_s"), "bare Faust agent",
            of("bare agent", "startup_s"), ",.1f", "<= 6", lambda value, _: value <= 6),
    ]
    return rows


def replay_rows(rates: list[tuple[float, float]], organisation: str, count: int,
                sizes: list[int]) -> list[Row]:
    return [
        Row(f"replay events/s, {organisation} ({count:,} events)",
            [replay for _, replay in rates], "parse only", [parse for parse, _ in rates],
            target=">= 100,000", meets=lambda value, _: value >= 100_000),
        Row("stored state per user (bytes, mean, after that replay)",
            [statistics.fmean(sizes)], "baselines' EW record", [pipelines.EW_RECORD.size],
            target="<= 1,000", meets=lambda value, _: value <= 1000),
    ]


def user_memory_rows(users: int) -> list[Row]:
    """bench_user_memory.py's holdings, each in a child, against holding all decoded."""
    def held(holding: str) -> dict[str, float]:
        child = subprocess.run(
            [sys.executable, str(USER_MEMORY), "--one", "--users", str(users),
             "--holdings", holding], check=True, capture_output=True, text=True, cwd=BENCH)
        return dict(json.loads(child.stdout))

    rows = []
    for side in ("worker", "replay"):
        mine, before = held(side), held(f"{side}-all-decoded")
        rows.append(Row(f"{side}: resident bytes per user ({users:,} users held)",
                        [mine["rss_per_user"]], "all decoded", [before["rss_per_user"]],
                        target="<= 4,000", meets=lambda value, _: value <= 4000))
    return rows


def latency_rows(runs: dict[str, list[bench_latency.Latency]], rate: float,
                 sustained: float) -> list[Row]:
    worker, raw = runs[f"worker at {rate:,.0f}/s"], runs[f"raw loop at {rate:,.0f}/s"]
    offered = " / ".join(f"{run.offered_per_s:,.0f}" for run in worker)
    alerted = " / ".join(f"{run.alerted}/{run.spikes}" for run in worker)
    took = " / ".join(f"{run.took_per_s:,.0f}" for run in worker)
    cpu = " / ".join(f"{run.cpu_us_per_event:,.0f}" for run in worker)
    rows = [
        Row(f"latency p50 (ms) at {rate:,.0f} events/s offered", [r.p50_ms for r in worker],
            "raw aiokafka loop", [r.p50_ms for r in raw], target="<= 50",
            meets=lambda value, _: value <= 50,
            note=[f"offered {offered} events/s; spikes alerted {alerted}; the worker took "
                  f"{took} events/s at {cpu} us of CPU an event"
                  + ("; below the offered rate, so the latency is its queue"
                     if any(r.took_per_s < 0.95 * r.offered_per_s for r in worker) else "")]),
        Row("latency p99 (ms)", [r.p99_ms for r in worker], "raw aiokafka loop",
            [r.p99_ms for r in raw], target="<= 250", meets=lambda value, _: value <= 250),
    ]
    label = f"at {sustained:.0%} of capacity"
    if sustained and f"worker {label}" in runs:
        worker, raw = runs[f"worker {label}"], runs[f"raw loop {label}"]
        offered = " / ".join(f"{run.offered_per_s:,.0f}" for run in worker)
        took = " / ".join(f"{run.took_per_s:,.0f}" for run in worker)
        rows += [
            Row(f"latency p50 (ms) {label} (the rate the worker took x {sustained})",
                [r.p50_ms for r in worker], "raw aiokafka loop", [r.p50_ms for r in raw],
                note=[f"offered {offered} events/s, taken at {took} events/s"]),
            Row("latency p99 (ms), the same", [r.p99_ms for r in worker], "raw aiokafka loop",
                [r.p99_ms for r in raw]),
        ]
    return rows


def scale_rows(one: list[bench_scale.Throughput], two: list[bench_scale.Throughput],
               accounting: bench_scale.Accounting) -> list[Row]:
    return [
        Row("two workers on 8 partitions, events/s", [run.events_per_s for run in two],
            "one worker", [run.events_per_s for run in one],
            target=">= 1.8x", meets=lambda _, ratio: ratio >= 1.8,
            note=[str(run) for pair in zip(one, two, strict=True) for run in pair]),
        Row("worker added and removed mid-run: in = scored + dead-lettered",
            [accounting.scored + accounting.dead_lettered], "messages in", [accounting.sent],
            target="1.00x, none lost",
            meets=lambda _, ratio: accounting.nothing_lost and ratio == 1,
            note=[f"{accounting.scored:,} scored + {accounting.dead_lettered} dead-lettered "
                  f"of {accounting.sent:,} sent; {accounting.read_again:,.0f} messages read "
                  "again after the rebalances, dropped as duplicates"]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--before", default=BEFORE_ISSUE_15,
                        help="the commit whose worker is the 'before' (empty: leave it out)")
    parser.add_argument("--replay-users", type=int, default=400)
    parser.add_argument("--replay-days", type=int, default=28)
    parser.add_argument("--memory-users", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--latency-seconds", type=float, default=5)
    parser.add_argument("--sustained", type=float, default=0.5,
                        help="also measure latency at this share of the rate the worker took")
    parser.add_argument("--scale-events", type=int, default=15_000)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, one round: checks the suite runs, measures little")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.events, args.users, args.replay_users = 1, 3000, 500, 20
        args.replay_days, args.memory_users, args.latency_seconds = 7, 5000, 2
        args.scale_events = 3000
    began = time.monotonic()
    rows: list[Row] = []
    with kafka_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        section("pipelines (a, d, c: resident memory of the live worker)", began)
        before = pipelines.source_tree(args.before, folder) if args.before else None
        runs = pipelines.compare(broker, args.events, args.users, args.rounds, folder,
                                 pipelines.PIPELINES + ((pipelines.BEFORE,) if before else ()),
                                 before)
        rows += pipeline_rows(runs, args.users)

        section("replay (b) and stored state per user (c)", began)
        events = bench_replay.simulated(args.replay_users, args.replay_days, folder)
        rates = bench_replay.measure(events, args.rounds, folder)
        users, _ = state_sizes(events)
        with open(events, "rb") as source:
            rows += replay_rows(rates, f"{args.replay_users} people x {args.replay_days} days",
                                sum(1 for _ in source), users)

        if USER_MEMORY.exists():
            section("resident memory per user held (c)", began)
            rows += user_memory_rows(args.memory_users)

        section("latency (e)", began)
        latencies = bench_latency.compare(broker, args.rate, args.latency_seconds, args.rounds,
                                          folder, args.sustained)
        rows += latency_rows(latencies, args.rate, args.sustained)

        section("scale out (f)", began)
        spread = bench_scale.usage(args.scale_events, max(args.scale_events // 10, 100))
        one, two = bench_scale.compare(broker, spread, args.rounds, folder)
        rows += scale_rows(one, two, bench_scale.join_and_leave(broker, spread, folder))
    print(f"\nissue 15 figures, {args.rounds} round(s) each (a / b), "
          f"{(time.monotonic() - began) / 60:.0f} min\n")
    print(table(rows))
    for row in rows:
        for line in row.note:
            print(f"- {row.figure}: {line}")


def section(title: str, began: float) -> None:
    print(f"[{(time.monotonic() - began) / 60:4.1f} min] {title}", flush=True)


if __name__ == "__main__":
    main()
