"""Replay: the worker's detectors over a file of events, with no Kafka — a backtest.

It calls the same :class:`detectors.ScoringEngine` as the worker, user by user in
file order, so for the same file and config it emits the same alerts, same ids.
A backtest has no processing time: an alert's ``detected_at`` is its event time.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from detectors import EventScore, ScoringEngine, TeamState, UserState, routing_key
from schemas import DetectorConfig, InvalidEvent, TokenUsageEvent, parse_event
from tokenradar.progress import ProgressHook

if TYPE_CHECKING:
    from tokenradar.report import ReportBuilder

PROGRESS_EVERY_EVENTS = 1000
"""How often the progress hook hears how far the file is read."""


@dataclass
class ReplaySummary:
    events: int = 0
    duplicates: int = 0
    invalid: int = 0
    alerts_by_kind: Counter[str] = field(default_factory=Counter)
    """Incidents alerted (new alert_ids), by kind: what ``evaluate`` and the worker count."""
    escalations: int = 0
    """Alerts re-published for an open incident that got more severe (same alert_id)."""
    seconds: float = 0.0
    invalid_examples: list[str] = field(default_factory=list)

    @property
    def alerts(self) -> int:
        return sum(self.alerts_by_kind.values())

    def describe(self) -> str:
        rate = self.events / self.seconds if self.seconds else 0.0
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.alerts_by_kind.items())) or "none"
        return (f"{self.events:,} events scored in {self.seconds:.1f} s ({rate:,.0f} events/s), "
                f"{self.duplicates:,} duplicates dropped, {self.invalid:,} invalid lines skipped; "
                f"{self.alerts:,} alerts ({kinds}), {self.escalations:,} escalations")


def score_stream(events: Iterator[TokenUsageEvent], engine: ScoringEngine
                 ) -> Iterator[tuple[TokenUsageEvent, EventScore, UserState]]:
    """(event, its score, the user's state after it), users' and teams' states in memory.

    A user's state is kept per routing key, as the worker keeps it: a person who
    changes team starts afresh in the new one, on both.
    """
    states: dict[tuple[str, str], UserState] = {}
    teams: dict[str, TeamState] = {}
    for event in events:
        key = (routing_key(event), event.user_id)
        state = states.get(key)
        if state is None:
            state = states[key] = engine.new_state(event.user_id)
        team = None
        if event.team is not None:
            team = teams.get(event.team)
            if team is None:
                team = teams[event.team] = engine.new_team_state(event.team)
        result = engine.score_event(state, event, detected_at=event.timestamp, team_state=team)
        yield event, result, state


def replay_file(input_path: Path, alerts_out: Path, scores_out: Path | None = None,
                config: DetectorConfig | None = None,
                progress: ProgressHook | None = None,
                report: ReportBuilder | None = None) -> ReplaySummary:
    """Score every event of a JSONL file; write alerts (and scores) as JSONL.

    With ``report``, every scored event (not the duplicates) is also handed to it,
    with the user's expected hourly band after the event. ``progress`` hears the bytes
    of the file read so far.
    """
    engine = ScoringEngine(config or DetectorConfig())
    summary = ReplaySummary()
    started = time.perf_counter()
    with open(input_path, "rb") as source, open(alerts_out, "w", encoding="utf-8") as alerts, \
            (open(scores_out, "w", encoding="utf-8") if scores_out
                 else contextlib.nullcontext()) as scores:
        events = _valid_events(source, summary)
        for event, result, state in score_stream(events, engine):
            summary.events += 1
            summary.duplicates += result.duplicate
            if report is not None and not result.duplicate:
                report.observe(event, result.score, result.alerts, engine.hour_band(state),
                               result.escalations)
            if scores is not None:
                scores.write(json.dumps({"event_id": event.event_id, "user_id": event.user_id,
                                         "score": round(result.score, 6)}) + "\n")
            for alert in result.alerts:
                if result.escalates(alert):
                    summary.escalations += 1
                else:
                    summary.alerts_by_kind[alert.kind] += 1
                alerts.write(alert.model_dump_json() + "\n")
            if progress is not None and summary.events % PROGRESS_EVERY_EVENTS == 0:
                progress(source.tell(), f"{summary.events:,} events, {summary.alerts:,} alerts")
    summary.seconds = time.perf_counter() - started
    return summary


def _valid_events(source: IO[bytes], summary: ReplaySummary) -> Iterator[TokenUsageEvent]:
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            yield parse_event(line)
        except InvalidEvent as exc:
            summary.invalid += 1
            if len(summary.invalid_examples) < 5:
                summary.invalid_examples.append(f"line {number}: {exc.reason}")

