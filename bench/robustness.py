"""The robustness matrix: the detectors on randomised organisations, judged by the worst.

Draws organisations (12 to tune on, 3 held out; 400 people, 25 teams, 28 days each),
simulates each, replays it through the real scoring core and evaluates the alerts; prints
one row per organisation, the WORST organisation per column, and PASS/FAIL against issue
13's targets. The held-out organisations are printed apart: do not tune on them.

    .venv/bin/python bench/robustness.py                  # the full matrix (make robustness)
    .venv/bin/python bench/robustness.py --quick          # small organisations, a few minutes
    .venv/bin/python bench/robustness.py --shuffle-seconds 120 --compare-shuffle
    .venv/bin/python bench/robustness.py --config examples/tokenradar.toml --json-out m.json

``--shuffle-seconds S`` scores each organisation's events in arrival order, each event
arriving up to S seconds after its timestamp, with ``--shuffle-duplicates`` of them
redelivered; ``--compare-shuffle`` scores the clean and the shuffled file and puts their
recall side by side (issue 18: within 5 points).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenradar.lab.evaluation_text import text_table
from tokenradar.lab.robustness import (
    BEHAVIOURS,
    HELD_OUT_SEEDS,
    TARGETS,
    TIMELY_KINDS,
    TUNING_SEEDS,
    figure,
    run_organisation,
)
from tokenradar.schemas import DetectorConfig
from tokenradar.schemas.config_file import ConfigFileError, load_config

FULL = {"users": 400, "teams": 25, "days": 28, "incidents_per_kind": 6}
QUICK = {"users": 100, "teams": 8, "days": 21, "incidents_per_kind": 3}
SHUFFLE_TOLERANCE = 0.05
"""Recall with a shuffle must stay within this of the clean run's (issue 18)."""


def main() -> int:
    args = _arguments()
    try:
        config = load_config(args.config) if args.config else DetectorConfig()
    except ConfigFileError as exc:
        print(f"robustness: {exc}", file=sys.stderr)
        return 2
    size = {**(QUICK if args.quick else FULL),
            **{k: v for k, v in (("users", args.users), ("teams", args.teams),
                                 ("days", args.days),
                                 ("incidents_per_kind", args.incidents_per_kind))
               if v is not None}}
    seeds = args.seeds or list(TUNING_SEEDS[:args.orgs])
    held_out = [] if args.no_held_out or args.seeds else list(HELD_OUT_SEEDS)
    print(f"robustness matrix: {len(seeds)} organisations + {len(held_out)} held out, "
          f"{size['users']} people, {size['teams']} teams, {size['days']} days, "
          f"{size['incidents_per_kind']} incidents per kind; config: "
          f"{args.config or 'the defaults'}; {args.workers} workers", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="robustness-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        tasks = [(seed, workdir, size, config, args) for seed in seeds + held_out]
        results: dict[int, dict[str, Any]] = {}
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            for result in pool.imap_unordered(_run, tasks):
                results[result["seed"]] = result
                print(f"[{len(results)}/{len(tasks)}] org {result['seed']} done "
                      f"({time.perf_counter() - started:.0f} s elapsed)", flush=True)
    runs = ["clean"] if not args.shuffle_seconds else (
        ["clean", "shuffled"] if args.compare_shuffle else ["shuffled"])
    report: dict[str, Any] = {"size": size, "config": str(args.config or "defaults"),
                              "shuffle_seconds": args.shuffle_seconds,
                              "organisations": [results[s] for s in seeds],
                              "held_out": [results[s] for s in held_out]}
    _print_knobs([results[seed] for seed in seeds + held_out])
    groups = (("tuning", "", seeds), ("held_out", "HELD OUT (never tune on these): ", held_out))
    for run in runs:
        for name, title, group in groups:
            if group:
                rows = [(seed, results[seed][run]) for seed in group]
                verdicts = _print_matrix(f"{title}{run} run", rows, results)
                report.setdefault("verdicts", {})[f"{name}.{run}"] = verdicts
    if args.compare_shuffle and args.shuffle_seconds:
        for title, group in (("", seeds), ("HELD OUT ", held_out)):
            if group:
                _print_shuffle_comparison(title, [results[seed] for seed in group])
    print(f"\n{len(tasks)} organisations in {time.perf_counter() - started:.0f} s")
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json_out}")
    return 0


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"small organisations: {QUICK}")
    parser.add_argument("--orgs", type=int, default=len(TUNING_SEEDS),
                        help=f"tuning organisations, at most {len(TUNING_SEEDS)}")
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="these organisations only (no held-out ones)")
    parser.add_argument("--no-held-out", action="store_true")
    for name in ("users", "teams", "days", "incidents-per-kind"):
        parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--config", type=Path, help="detector config (default: the defaults)")
    parser.add_argument("--shuffle-seconds", type=float, default=0.0,
                        help="score events in arrival order, each up to this late")
    parser.add_argument("--shuffle-duplicates", type=float, default=0.02,
                        help="with --shuffle-seconds: share of events redelivered")
    parser.add_argument("--compare-shuffle", action="store_true",
                        help="with --shuffle-seconds: also score the clean file, side by side")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json-out", type=Path, help="write every organisation's figures")
    parser.add_argument("--keep", type=Path, help="keep events, labels, alerts in this folder")
    args = parser.parse_args()
    if args.compare_shuffle and not args.shuffle_seconds:
        parser.error("--compare-shuffle needs --shuffle-seconds")
    return args


def _run(task: tuple[int, Path, dict[str, int], DetectorConfig, argparse.Namespace]
         ) -> dict[str, Any]:
    seed, workdir, size, config, args = task

    def say(message: str) -> None:
        print(f"  {message}", flush=True)

    return run_organisation(seed, workdir, size["users"], size["teams"], size["days"],
                            size["incidents_per_kind"], config,
                            shuffle_seconds=args.shuffle_seconds,
                            shuffle_duplicates=args.shuffle_duplicates,
                            clean=not args.shuffle_seconds or args.compare_shuffle, say=say)


def _print_knobs(results: list[dict[str, Any]]) -> None:
    """What each organisation was drawn with: to see why the worst one is worst."""
    names = list(results[0]["knobs"])
    print("\nOrganisations (knobs drawn from the seed; shares of people unless said)")
    print(text_table([["org", "events", *names],
                      *([str(r["seed"]), f"{r['events']:,}", *map(str, r["knobs"].values())]
                        for r in results)]))


def _print_matrix(title: str, rows: list[tuple[int, dict[str, Any]]],
                  results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The three tables of a group of organisations, each with its worst row; then the
    verdict of every target on the worst organisation."""
    print(f"\n=== {title} ===")
    alert_kinds = sorted({kind for _, row in rows for kind in row["false_per_1000_by_kind"]})
    benign = sorted({kind for _, row in rows for kind in row["false_on_benign"]})
    _table("False alerts per 1,000 active user-days (by alert kind); false alerts on benign "
           "labels; the noisiest identity's false alerts",
           ["org", "events", "user-days", "false/1k", *alert_kinds,
            *(f"on {kind}" for kind in benign), "noisiest id"],
           [[str(seed), f"{results[seed]['events']:,}", f"{row['active_user_days']:,}",
             _number(row["false_per_1000"]),
             *(_number(row["false_per_1000_by_kind"].get(k, 0.0)) for k in alert_kinds),
             *(str(row["false_on_benign"].get(k, 0)) for k in benign),
             str(row["noisiest_identity"])] for seed, row in rows],
           [None, None, None, "false_per_1000",
            *(f"false_per_1000_by_kind.{k}" for k in alert_kinds),
            *(f"false_on_benign.{k}" for k in benign), "noisiest_identity"],
           [row for _, row in rows], higher_is_worse=True)
    _table("Recall, kind recall in brackets (incidents per org); creeps of >= 5%/day found "
           "before doubling",
           ["org", *BEHAVIOURS, "creep<2x"],
           [[str(seed),
             *(f"{_share(row['recall'].get(k))} ({_share(row['kind_recall'].get(k))}) "
               f"n{row['incidents'].get(k, 0)}" for k in BEHAVIOURS),
             f"{_share(row['creep_before_doubling'])} n{row['creeps_fast']}"]
            for seed, row in rows],
           [None, *(f"recall.{k}" for k in BEHAVIOURS), "creep_before_doubling"],
           [row for _, row in rows], higher_is_worse=False)
    _table("Team shifts (reported as population_shift / in time / members alerted), "
           "alerts per incident, median delays (min; creep in days)",
           ["org", "shifts", "reported", "in time", "members", "alerts/inc", "max",
            *(f"delay {k}" for k in TIMELY_KINDS), "delay creep"],
           [[str(seed), str(row["shifts"]), _share(row["shifts_reported"]),
             _share(row["shifts_in_time"]), _share(row["shift_members_alerted"]),
             _number(row["alerts_per_incident_mean"]),
             str(row["alerts_per_incident_max"] or "-"),
             *(_number(row["median_delay_minutes"].get(k), 0) for k in TIMELY_KINDS),
             _days(row["median_delay_minutes"].get("creep"))] for seed, row in rows],
           [None, None, "shifts_reported", "shifts_in_time", "shift_members_alerted",
            "alerts_per_incident_mean", "alerts_per_incident_max",
            *(f"median_delay_minutes.{k}" for k in TIMELY_KINDS),
            "median_delay_minutes.creep"],
           [row for _, row in rows],
           higher_is_worse={"shifts_reported": False, "shifts_in_time": False})
    verdicts = {}
    print("\nTargets on the worst organisation (issue 13):")
    for target in TARGETS:
        values = [(value, seed) for seed, row in rows
                  if (value := figure(row, target.figure)) is not None]
        if not values:
            print(f"  n/a   {target.text}: no organisation has it")
            continue
        worst = target.worst([value for value, _ in values])
        seed = next(s for value, s in values if value == worst)
        passed = target.met(worst)
        verdicts[target.figure] = {"worst": worst, "org": seed, "pass": passed}
        print(f"  {'PASS' if passed else 'FAIL'}  {target.text}: worst {worst:.3g} (org {seed})")
    return verdicts


def _table(title: str, header: list[str], cells: list[list[str]], figures: list[str | None],
           rows: list[dict[str, Any]], higher_is_worse: bool | dict[str, bool]) -> None:
    """A table with a WORST row: per column, the worst organisation's value."""
    worst = ["WORST"]
    for name in figures[1:]:
        if name is None:
            worst.append("")
            continue
        values = [v for row in rows if (v := figure(row, name)) is not None]
        high = (higher_is_worse.get(name, True) if isinstance(higher_is_worse, dict)
                else higher_is_worse)
        value = (max if high else min)(values) if values else None
        worst.append("-" if value is None else
                     _share(value) if name.startswith(("recall", "creep_before", "shifts_",
                                                       "shift_members"))
                     else _days(value) if name == "median_delay_minutes.creep"
                     else f"{value:.0f}" if name.startswith(("false_on_benign", "noisiest"))
                     else _number(value))
    print(f"\n{title}")
    print(text_table([header, *cells, worst]))


def _print_shuffle_comparison(title: str, results: list[dict[str, Any]]) -> None:
    """Recall per behaviour, clean -> shuffled, per organisation and pooled."""
    kinds = [*BEHAVIOURS, "population_shift"]
    rows = [[str(r["seed"]),
             *(f"{_share(r['clean']['recall'].get(k))}->{_share(r['shuffled']['recall'].get(k))}"
               for k in kinds),
             f"{_number(r['clean']['false_per_1000'])}->{_number(r['shuffled']['false_per_1000'])}"]
            for r in results]
    pooled = ["pooled"]
    verdicts = []
    for kind in kinds:
        clean = _pooled_recall(results, "clean", kind)
        shuffled = _pooled_recall(results, "shuffled", kind)
        pooled.append(f"{_share(clean)}->{_share(shuffled)}")
        if clean is not None and shuffled is not None:
            verdicts.append((kind, clean - shuffled))
    pooled.append("")
    print(f"\n=== {title}recall clean -> shuffled ===")
    print(text_table([["org", *kinds, "false/1k"], *rows, pooled]))
    for kind, drop in verdicts:
        change = (f"drops {100 * drop:.1f} points" if drop > 0 else
                  f"gains {-100 * drop:.1f} points" if drop < 0 else "is unchanged")
        print(f"  {'PASS' if abs(drop) <= SHUFFLE_TOLERANCE else 'FAIL'}  {kind}: pooled recall "
              f"{change} with the shuffle (tolerance {100 * SHUFFLE_TOLERANCE:.0f} points)")


def _pooled_recall(results: Iterable[dict[str, Any]], run: str, kind: str) -> float | None:
    found = total = 0.0
    for result in results:
        row = result[run]
        count = row["incidents"].get(kind, 0)
        if count:
            total += count
            found += count * row["recall"][kind]
    return found / total if total else None


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _days(minutes: float | None) -> str:
    return "-" if minutes is None else f"{minutes / 1440:.1f} d"


if __name__ == "__main__":
    sys.exit(main())
