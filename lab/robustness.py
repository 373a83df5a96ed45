"""The robustness matrix: the real scoring core on randomised organisations, judged by
the worst of them (``make robustness``; the command is ``bench/robustness.py``).

Each organisation is drawn from its seed (:func:`tokenradar.lab.simulation.random_organisation`),
simulated, replayed (:func:`tokenradar.replay.replay_file`, the worker's own scoring) and
evaluated (:func:`tokenradar.lab.evaluate.evaluate`); :func:`organisation_figures` turns
the evaluation into one row of figures, and :data:`TARGETS` says what each must reach
on the worst organisation (issue 13).

The organisations of :data:`HELD_OUT_SEEDS` are for checking, never for tuning: look at
their figures only once a change is made, or they stop telling anything new.
"""

from __future__ import annotations

import heapq
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tokenradar.lab.evaluate import Evaluation, evaluate
from tokenradar.lab.evaluation_files import load_alerts, load_labels
from tokenradar.lab.simulation import random_organisation, write_simulation
from tokenradar.replay import replay_file
from tokenradar.schemas import AnomalyEvent, DetectorConfig
from tokenradar.schemas.kinds import POPULATION_SHIFT

TUNING_SEEDS = tuple(range(1, 13))
"""The organisations to tune and judge on."""
HELD_OUT_SEEDS = (1013, 2027, 3041)
"""Organisations kept out of tuning: printed apart, looked at only to check a change."""
BEHAVIOURS = ("spike", "gaming", "scripted_loop", "runaway_agent", "new_pattern", "creep")
TIMELY_KINDS = ("spike", "scripted_loop", "runaway_agent", "new_pattern")
"""Kinds whose median delay must stay within :data:`MAX_MEDIAN_DELAY_MINUTES`."""
MAX_MEDIAN_DELAY_MINUTES = 30.0
CREEP_MIN_DAILY = 0.05
"""Creeps of at least this growth per working day must be found before they double."""
SHIFT_WORKING_DAYS = 3
"""A team shift is reported in time within this many working days of its ramp's end."""


@dataclass(frozen=True)
class Target:
    """What a figure must reach on the worst organisation: ``figure <= bound`` (``at_most``)
    or ``figure >= bound``."""

    figure: str
    bound: float
    at_most: bool
    text: str

    def worst(self, values: list[float]) -> float:
        return max(values) if self.at_most else min(values)

    def met(self, value: float) -> bool:
        return value <= self.bound if self.at_most else value >= self.bound


TARGETS = (
    Target("false_per_1000", 0.5, True, "false alerts per 1,000 active user-days <= 0.5"),
    *(Target(f"recall.{kind}", 0.95, False, f"{kind} recall >= 95%")
      for kind in ("spike", "gaming", "scripted_loop", "runaway_agent", "new_pattern")),
    Target("creep_before_doubling", 0.9, False,
           f"creeps of >= {CREEP_MIN_DAILY:.0%}/working day found before doubling >= 90%"),
    Target("shifts_in_time", 0.8, False,
           f"shifted teams reported as population_shift within {SHIFT_WORKING_DAYS} working "
           "days of the ramp's end >= 80%"),
    Target("shift_members_alerted", 0.05, True, "members of shifted teams alerted <= 5%"),
    Target("alerts_per_incident_max", 3, True, "alerts per incident <= 3 (every incident)"),
    *(Target(f"median_delay_minutes.{kind}", MAX_MEDIAN_DELAY_MINUTES, True,
             f"{kind} median delay <= {MAX_MEDIAN_DELAY_MINUTES:.0f} min")
      for kind in TIMELY_KINDS),
)


def figure(row: dict[str, Any], name: str) -> float | None:
    """A figure of a row by dotted name (``recall.spike``); None when it does not apply."""
    value: Any = row
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return None if value is None else float(value)


def run_organisation(seed: int, workdir: Path, users: int, teams: int, days: int,
                     incidents_per_kind: int, config: DetectorConfig,
                     shuffle_seconds: float = 0.0, shuffle_duplicates: float = 0.0,
                     clean: bool = True, say: Callable[[str], None] = print
                     ) -> dict[str, Any]:
    """Simulate organisation ``seed`` and score it: ``{"clean": row, "shuffled": row}``
    (``clean``: the file as simulated; ``shuffled`` with ``shuffle_seconds``)."""
    spec = random_organisation(seed, users=users, teams=teams, days=days,
                               incidents_per_kind=incidents_per_kind)
    assert spec.knobs is not None
    events, labels = workdir / f"org-{seed}.jsonl", workdir / f"org-{seed}-labels.jsonl"
    count = write_simulation(spec, events, labels)
    say(f"org {seed}: simulated {count:,} events")
    result: dict[str, Any] = {"seed": seed, "events": count, "knobs": spec.knobs.summary()}
    if clean:
        result["clean"] = score_file(events, labels, config, workdir / f"org-{seed}-alerts.jsonl")
        say(f"org {seed}: clean run scored")
    if shuffle_seconds > 0:
        shuffled = workdir / f"org-{seed}-shuffled.jsonl"
        shuffle_arrivals(events, shuffled, shuffle_seconds, shuffle_duplicates, seed)
        result["shuffled"] = score_file(shuffled, labels, config,
                                        workdir / f"org-{seed}-shuffled-alerts.jsonl")
        say(f"org {seed}: shuffled run scored")
    return result


def score_file(events: Path, labels: Path, config: DetectorConfig, alerts: Path
               ) -> dict[str, Any]:
    """Replay a file with the real scoring core, evaluate its alerts: one row of figures."""
    summary = replay_file(events, alerts, config=config)
    published = load_alerts(alerts)
    evaluation = evaluate(load_labels(labels), published, _active_user_days(events))
    params = {record["incident_id"]: record.get("params", {})
              for record in map(json.loads, labels.read_text(encoding="utf-8").splitlines())}
    row = organisation_figures(evaluation, published, params)
    row["replay_seconds"] = round(summary.seconds, 1)
    return row


def _active_user_days(events: Path) -> int:
    """Distinct (user, UTC date) pairs, as ``tokenradar evaluate --events`` counts them; read
    with ``json`` alone, as every simulated event is valid (a third of the time)."""
    with open(events, "rb") as lines:
        return len({(record["user_id"], record["timestamp"][:10])
                    for record in map(json.loads, lines)})


def organisation_figures(evaluation: Evaluation, alerts: list[AnomalyEvent],
                         params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The matrix's figures of one organisation, plain JSON values.

    ``alerts`` are the evaluated alerts (for the noisiest identity); ``params`` are the
    labels' drawn shapes by incident id (a creep's ``doubles_at``, a shift's ``ramp_days``).
    """
    by_kind = {f.kind: f for f in evaluation.by_kind}
    outcomes = evaluation.outcomes
    matched = {alert.alert_id for o in outcomes for alert in o.alerts}
    false_by_user = Counter(user for alert_id, user in {(a.alert_id, a.user_id) for a in alerts}
                            if alert_id not in matched)
    counts = [len(o.alerts) for o in outcomes if o.detected]
    creeps = [o for o in outcomes if o.label.kind == "creep"
              and float(params[o.label.incident_id].get("daily_growth", 0)) >= CREEP_MIN_DAILY
              and "doubles_at" in params[o.label.incident_id]]
    shifts = [o for o in outcomes if o.label.kind == POPULATION_SHIFT.name]
    return {
        "active_user_days": evaluation.active_user_days,
        "false_per_1000": evaluation.alerts_overall.false_alerts_per_1000_user_days,
        "false_alerts": evaluation.alerts_overall.false_alerts,
        "false_per_1000_by_kind": {a.kind: a.false_alerts_per_1000_user_days
                                   for a in evaluation.alerts_by_kind if a.false_alerts},
        "false_on_benign": {b.kind: b.alerts for b in evaluation.benign if b.alerts},
        "noisiest_identity": max(false_by_user.values(), default=0),
        "incidents": {kind: by_kind[kind].incidents for kind in by_kind},
        "recall": {kind: f.recall for kind, f in by_kind.items()},
        "kind_recall": {kind: f.kind_recall for kind, f in by_kind.items()},
        "median_delay_minutes": {kind: _minutes(f.median_delay) for kind, f in by_kind.items()},
        "creeps_fast": len(creeps),
        "creep_before_doubling": _share(
            [bool(o.alerts) and o.alerts[0].event_time
             < datetime.fromisoformat(params[o.label.incident_id]["doubles_at"])
             for o in creeps]),
        "shifts": len(shifts),
        "shifts_reported": _share([_first_of_kind(o.alerts) is not None for o in shifts]),
        "shifts_in_time": _share([_shift_in_time(o.label.start, o.alerts,
                                                 params[o.label.incident_id])
                                  for o in shifts]),
        "shift_members_alerted": evaluation.population_shift_share,
        "alerts_per_incident_mean": sum(counts) / len(counts) if counts else None,
        "alerts_per_incident_max": max(counts, default=None),
    }


def _first_of_kind(alerts: tuple[AnomalyEvent, ...], kind: str = POPULATION_SHIFT.name
                   ) -> AnomalyEvent | None:
    return next((alert for alert in alerts if alert.kind == kind), None)


def _shift_in_time(start: datetime, alerts: tuple[AnomalyEvent, ...],
                   params: dict[str, Any]) -> bool:
    """Reported as ``population_shift`` by the deadline: the ramp's end plus
    :data:`SHIFT_WORKING_DAYS` working days (Monday to Friday, UTC)."""
    alert = _first_of_kind(alerts)
    return alert is not None and alert.event_time <= shift_deadline(
        start, float(params["ramp_days"]))


def shift_deadline(start: datetime, ramp_days: float) -> datetime:
    """When a shift starting at ``start`` must be reported by: its ramp's end plus
    :data:`SHIFT_WORKING_DAYS` working days (Monday to Friday, UTC)."""
    deadline, left = start + timedelta(days=ramp_days), SHIFT_WORKING_DAYS
    while left:
        deadline += timedelta(days=1)
        left -= deadline.weekday() < 5
    return deadline


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _minutes(delay: timedelta | None) -> float | None:
    return None if delay is None else round(delay / timedelta(minutes=1), 1)


def shuffle_arrivals(source: Path, target: Path, seconds: float, duplicate_share: float,
                     seed: int) -> int:
    """Copy a time-ordered events file in arrival order: each event arrives up to
    ``seconds`` after its timestamp (timestamps kept), so a person's events within that
    window come in any order, as from many gateway instances; ``duplicate_share`` of them
    arrive twice (a redelivery, within the same window). Returns the lines written.

    Reads and writes one line at a time: only the window's events are in memory.
    """
    rng = random.Random(f"{seed}/shuffle")
    pending: list[tuple[float, int, bytes]] = []
    written = order = 0
    with open(source, "rb") as lines, open(target, "wb") as out:
        for line in lines:
            if not line.strip():
                continue
            at = datetime.fromisoformat(json.loads(line)["timestamp"]).timestamp()
            while pending and pending[0][0] <= at:  # every later arrival is after ``at``
                out.write(heapq.heappop(pending)[2])
                written += 1
            copies = 2 if rng.random() < duplicate_share else 1
            for _ in range(copies):
                order += 1
                heapq.heappush(pending, (at + rng.uniform(0, seconds), order, line))
        while pending:
            out.write(heapq.heappop(pending)[2])
            written += 1
    return written
