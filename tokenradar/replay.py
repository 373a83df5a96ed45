"""Replay: the worker's detectors over a file of events, with no Kafka — a backtest.

It calls the same :class:`tokenradar.detectors.ScoringEngine` as the worker, and puts each
routing key's events through the same :class:`tokenradar.detectors.reorder.ReorderBuffer`, so
each team (or user) is scored in the same order as in the worker and, for the same
file and config, the alerts are the same, same ids. A backtest has no processing
time: an alert's ``detected_at`` is its event time.

It takes the same input limits as the worker (:class:`tokenradar.schemas.events.InputLimits`).
Only one needs a clock: an event dated more than ``max_ahead_seconds`` after *now* is
not scored. The worker's now is the time it reads the event; replay's is ``now``
(``--now``), by default the time replay starts. Replayed after the worker ran (the
usual backtest), it skips every event the worker dead-lettered as ``future`` except
one that has since stopped being ahead: give ``--now`` the time the worker read the
events to reproduce it exactly.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_string
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple

from tokenradar.detectors import EventScore, ScoringEngine, TeamState, UserState, routing_key
from tokenradar.detectors.reorder import Released, ReorderBuffer, held_text
from tokenradar.detectors.retention import DAY_SECONDS, StateRetention
from tokenradar.detectors.state import LIVE_STATES, HeldStates
from tokenradar.detectors.verdicts import VerdictBook
from tokenradar.progress import ProgressHook
from tokenradar.schemas import DetectorConfig, InvalidEvent, TokenUsageEvent, parse_event
from tokenradar.schemas.events import DEFAULT_LIMITS, InputLimits
from tokenradar.schemas.feedback import FeedbackVerdict, InvalidVerdict, parse_verdict
from tokenradar.schemas.pseudonyms import Pseudonymiser

if TYPE_CHECKING:
    from tokenradar.lab.report import ReportBuilder

PROGRESS_EVERY_EVENTS = 1000
"""How often the progress hook hears how far the file is read."""
FILE_ORIGIN = "file"
"""Replay's only origin: the file delivers every routing key's events in its own order."""


@dataclass
class ReplaySummary:
    events: int = 0
    duplicates: int = 0
    late: int = 0
    invalid: int = 0
    alerts_by_kind: Counter[str] = field(default_factory=Counter)
    """Incidents alerted (new alert_ids), by kind: what ``evaluate`` and the worker count."""
    escalations: int = 0
    """Alerts re-published for an open incident that got more severe (same alert_id)."""
    expired: int = 0
    """Users' states removed after ``state_expiry_days`` without an event of theirs."""
    seconds: float = 0.0
    invalid_examples: list[str] = field(default_factory=list)
    verdicts: int = 0
    """Verdicts filed from ``--feedback`` (a later verdict on the same alert replaces one)."""
    silenced: Counter[str] = field(default_factory=Counter)
    """Alerts silenced, by why: ``verdict`` or ``calendar``."""
    calibration: list[str] = field(default_factory=list)
    """Where each detector's threshold ended, over the teams' own days: one line each."""
    unpriced_models: list[str] = field(default_factory=list)
    """Models priced at the price table's default, in the order first seen."""

    @property
    def alerts(self) -> int:
        return sum(self.alerts_by_kind.values())

    def describe(self) -> str:
        rate = self.events / self.seconds if self.seconds else 0.0
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.alerts_by_kind.items())) or "none"
        text = (f"{self.events:,} events scored in {self.seconds:.1f} s ({rate:,.0f} events/s), "
                f"{self.late:,} of them late (beyond the reorder window, scored as they came), "
                f"{self.duplicates:,} duplicates dropped, {self.invalid:,} invalid lines skipped; "
                f"{self.alerts:,} alerts ({kinds}), {self.escalations:,} escalations")
        if self.verdicts or self.silenced:
            text += (f"; {self.verdicts:,} verdicts filed, alerts silenced by verdicts "
                     f"{self.silenced['verdict']:,}, by calendar windows "
                     f"{self.silenced['calendar']:,}")
        if self.expired:
            text += f"; {self.expired:,} users' states expired"
        if self.unpriced_models:
            text += (f"; priced at [prices.default], not in the price table: "
                     f"{', '.join(self.unpriced_models)}")
        return text


class Scored(NamedTuple):
    event: TokenUsageEvent
    result: EventScore
    state: UserState
    """The user's state after the event."""
    late: bool
    expired: int = 0
    """Users' states removed since the previous event scored: this user's, stale at the
    event (the user starts afresh), and those swept for being long stale."""


def score_stream(arrivals: Iterable[tuple[TokenUsageEvent, str]], engine: ScoringEngine,
                 teams: dict[str, TeamState] | None = None,
                 verdicts: dict[str, VerdictBook] | None = None,
                 retention: StateRetention | None = None,
                 live_states: int = LIVE_STATES) -> Iterator[Scored]:
    """Score (event, its raw JSON) arrivals in the order the worker would, states in memory.

    Each routing key's events go through a reorder buffer (the window is the config's
    ``scoring.reorder_seconds``) and are scored as it releases them; the buffers are
    flushed when the input ends. A user's state is kept per routing key, as the worker
    keeps it: a person who changes team starts afresh in the new one, on both. Users
    not among the ``live_states`` scored last are held as their stored bytes
    (:class:`HeldStates`). Teams'
    states are kept in ``teams`` when given, for the caller to read afterwards. With a
    ``retention``, a user stale at their event starts afresh, as in the worker, and the
    states of users long gone are dropped once a day of event time.
    """
    states = HeldStates[tuple[str, str]](live_states)
    teams = {} if teams is None else teams
    verdicts = {} if verdicts is None else verdicts
    buffers: dict[str, ReorderBuffer] = {}
    window = engine.config.scoring.reorder_seconds
    max_events = engine.config.scoring.reorder_max_events
    newest = -1.0
    """Event time of the newest event scored."""
    swept_day = -1
    removed = 0

    def score(released: list[Released]) -> Iterator[Scored]:
        nonlocal newest, removed
        for item in released:
            event = item.event
            key = (routing_key(event), event.user_id)
            state = states.get(key)
            if (state is not None and retention is not None
                    and retention.is_stale(state.context.last_time, event.epoch_seconds)):
                state = None
                removed += 1
            if state is None:
                state = states[key] = engine.new_state(event.user_id)
            team = None
            if event.team is not None:
                team = teams.get(event.team)
                if team is None:
                    team = teams[event.team] = engine.new_team_state(event.team)
            result = engine.score_event(state, event, detected_at=event.timestamp,
                                        team_state=team, verdicts=verdicts.get(key[0]))
            newest = max(newest, event.epoch_seconds)
            yield Scored(event, result, state, item.late, removed)
            removed = 0

    for event, raw in arrivals:
        if retention is not None and event.epoch_seconds // DAY_SECONDS > swept_day:
            swept_day = int(event.epoch_seconds // DAY_SECONDS)
            gone = states.keys_where(lambda last_time: retention.sweepable(last_time, newest))
            for key in gone:
                del states[key]
            removed += len(gone)
        route = routing_key(event)
        buffer = buffers.get(route)
        if buffer is None:
            buffer = buffers[route] = ReorderBuffer(window, max_events)
        yield from score(buffer.add(event, raw, FILE_ORIGIN))
    for route in sorted(buffers):
        yield from score(buffers[route].flush())


def replay_file(input_path: Path, alerts_out: Path, scores_out: Path | None = None,
                config: DetectorConfig | None = None,
                progress: ProgressHook | None = None,
                report: ReportBuilder | None = None,
                feedback: Path | None = None,
                pseudonymiser: Pseudonymiser | None = None,
                state_expiry_days: float = 0.0,
                limits: InputLimits = DEFAULT_LIMITS,
                now: float | None = None) -> ReplaySummary:
    """Score every event of a JSONL file; write alerts (and scores) as JSONL.

    ``feedback``: a JSONL file of verdicts (``tokenradar feedback --out``), applied as
    the worker applies those of the feedback topic; a line that is not a verdict raises
    :class:`InvalidFeedbackFile`. ``limits`` and ``now`` (epoch seconds; None: the time
    replay starts) decide which lines are events, as the worker's settings and clock do.

    With ``report``, every scored event (not the duplicates) is also handed to it,
    with the user's expected hourly band after the event. ``progress`` hears the bytes
    of the file read so far. With a ``pseudonymiser``, each event's user id is replaced
    by its pseudonym as it is read, as the worker does: the same key, the same alerts.
    ``state_expiry_days`` (0: never) must be the worker's too, for the same reason.
    """
    engine = ScoringEngine(config or DetectorConfig())
    summary = ReplaySummary()
    books: dict[str, VerdictBook] = {}
    verdicts = [] if feedback is None else read_verdicts(feedback)
    for verdict in verdicts:
        summary.verdicts += books.setdefault(verdict.routing_key, VerdictBook()).file(verdict)
    if report is not None:
        report.add_verdicts(verdicts)
    started = time.perf_counter()
    with open(input_path, "rb") as source, open(alerts_out, "w", encoding="utf-8") as alerts, \
            (open(scores_out, "w", encoding="utf-8") if scores_out
                 else contextlib.nullcontext()) as scores:
        arrivals = valid_events(source, summary, limits,
                                 time.time() if now is None else now, pseudonymiser)
        # Scores are written in input order: each waits for the events read before it.
        order: dict[int, int] = {}
        waiting: dict[int, str] = {}
        written = 0

        def numbered() -> Iterator[tuple[TokenUsageEvent, str]]:
            for number, arrival in enumerate(arrivals):
                order[id(arrival[0])] = number
                yield arrival

        teams: dict[str, TeamState] = {}
        retention = (StateRetention(state_expiry_days, engine.config.scoring.reorder_seconds)
                     if state_expiry_days > 0 else None)
        for event, result, state, late, expired in score_stream(numbered(), engine, teams,
                                                                books, retention):
            summary.events += 1
            summary.expired += expired
            if result.silenced:
                summary.silenced.update(reason for _, reason in result.silenced)
                if report is not None:
                    report.silenced.update(reason for _, reason in result.silenced)
            summary.duplicates += result.duplicate
            summary.late += late and not result.duplicate
            if report is not None and not result.duplicate:
                report.observe_scored(event, result, state)
            if scores is not None:
                waiting[order.pop(id(event))] = score_line(event, result.score)
                while written in waiting:
                    scores.write(waiting.pop(written))
                    written += 1
            else:
                order.pop(id(event))
            for alert in result.alerts:
                if result.escalates(alert):
                    summary.escalations += 1
                else:
                    summary.alerts_by_kind[alert.kind] += 1
                alerts.write(alert.model_dump_json() + "\n")
            if progress is not None and summary.events % PROGRESS_EVERY_EVENTS == 0:
                progress(source.tell(), f"{summary.events:,} events, {summary.alerts:,} alerts")
    summary.seconds = time.perf_counter() - started
    summary.unpriced_models = engine.take_unpriced_models()
    configured = engine.config.scoring.alert_threshold
    summary.calibration = [standing.describe(configured)
                           for standing in engine.calibration(teams.values())]
    return summary


def score_line(event: TokenUsageEvent, score: float) -> str:
    r"""An event's line of ``--scores-out``: what ``json.dumps`` writes of its event id,
    user id and score (to 6 places), built directly as it is written for every event.

    >>> import json
    >>> from datetime import UTC, datetime
    >>> event = TokenUsageEvent(event_id="e\u00e9", user_id='a"b', model="m", input_tokens=1,
    ...     output_tokens=1, timestamp=datetime(2026, 11, 2, tzinfo=UTC))
    >>> score_line(event, 0.12345678) == json.dumps(
    ...     {"event_id": "e\u00e9", "user_id": 'a"b', "score": 0.123457}) + "\n"
    True
    """
    return (f'{{"event_id": {_json_string(event.event_id)}, '
            f'"user_id": {_json_string(event.user_id)}, "score": {round(score, 6)!r}}}\n')


class InvalidFeedbackFile(ValueError):
    """A ``--feedback`` file with a line that is not a verdict; the message says where."""


def read_verdicts(path: Path) -> list[FeedbackVerdict]:
    """Every verdict of a JSONL file, in file order (blank lines skipped)."""
    verdicts = []
    with open(path, "rb") as source:
        for number, line in enumerate(source, start=1):
            if line.strip():
                try:
                    verdicts.append(parse_verdict(line))
                except InvalidVerdict as exc:
                    raise InvalidFeedbackFile(
                        f"{path} line {number} is not a verdict ({exc}): write verdicts "
                        "with `tokenradar feedback ... --out FILE`") from None
    return verdicts


def valid_events(source: IO[bytes], summary: ReplaySummary, limits: InputLimits,
                  now: float, pseudonymiser: Pseudonymiser | None = None
                  ) -> Iterator[tuple[TokenUsageEvent, str]]:
    for number, line in enumerate(source, start=1):
        raw = line.strip()
        if not raw:
            continue
        try:
            event = parse_event(raw, limits, now)
        except InvalidEvent as exc:
            summary.invalid += 1
            if len(summary.invalid_examples) < 5:
                summary.invalid_examples.append(f"line {number}: {exc.reason}")
            continue
        if pseudonymiser is not None:
            event, _ = pseudonymiser.event(event)
        yield event, held_text(event)

