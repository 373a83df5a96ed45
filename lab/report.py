"""The backtest report: one self-contained HTML page about a replay run.

``replay`` feeds a :class:`ReportBuilder` every scored event; the builder keeps only
hourly buckets per user (about 40 bytes per active user-hour), a fixed score
histogram and the alerts, never the events. :meth:`ReportBuilder.write` then draws
the run's figures, the evaluation against labels when given, the score
distribution, and the hourly usage of the most telling users, with inline SVG and
CSS: no script, font, image or style sheet is fetched from anywhere. People's verdicts
(``replay --feedback``) are drawn on the users' timelines: a diamond when given, and the
silence of a ``false`` or ``expected`` one as a strip along the floor until it ends.

Examples
--------
>>> from datetime import UTC, datetime
>>> from schemas import TokenUsageEvent
>>> builder = ReportBuilder(alert_threshold=0.6, config_version="abc")
>>> event = TokenUsageEvent(event_id="e1", user_id="<ana>", model="m", input_tokens=900,
...     output_tokens=100, timestamp=datetime(2026, 11, 2, 9, 30, tzinfo=UTC))
>>> builder.observe(event, 0.1, [], None)
>>> page = builder.render()
>>> "&lt;ana&gt;" in page and "<ana>" not in page and "<script" not in page
True
"""

from __future__ import annotations

import html
import math
from array import array
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tokenradar.detectors import EventScore, UserState
from tokenradar.lab.budget_report import BudgetCurves
from tokenradar.lab.evaluate import Evaluation, IncidentLabel
from tokenradar.lab.evaluation_text import duration, evaluation_notes, evaluation_tables
from tokenradar.lab.svg import (
    LinearScale,
    LogScale,
    decade_ticks,
    element,
    group,
    log_y_axis,
    points,
    short_count,
    svg,
    time_axis,
)
from tokenradar.schemas import AnomalyEvent, DetectorConfig, TokenUsageEvent
from tokenradar.schemas.feedback import FeedbackVerdict
from tokenradar.schemas.kinds import SPIKE, declared_kinds

HOUR = 3600.0
PLOTTED_USERS = 16
"""Users with alerts or labels drawn at most; two quiet users are added for contrast."""
QUIET_USERS = 2
SCORE_BINS = 50
MAX_ALERT_MARKS = 100_000
"""Alerts kept for drawing; counts stay exact beyond it."""
WIDTH = 1240
KIND_PALETTE = ("#d62728", "#8c564b", "#9467bd", "#e377c2", "#7f3fbf", "#ff7f0e", "#17becf",
                "#bcbd22", "#2ca02c", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")
"""One colour per declared kind, in the order declared (spike red, drift brown...)."""
INCIDENT_FILL, BENIGN_FILL, BAND_FILL = "#f4a261", "#52b788", "#6f8fd8"
VERDICT_COLOURS = {"false": "#555555", "expected": "#2a9d8f", "true": "#c1121f"}


@dataclass
class _UserSeries:
    """One user's hourly buckets: start, tokens, and the band after the hour's last event."""

    team: str | None = None
    events: int = 0
    tokens: int = 0
    hours: array[float] = field(default_factory=lambda: array("d"))
    hour_tokens: array[float] = field(default_factory=lambda: array("d"))
    bands: array[float] = field(default_factory=lambda: array("f"))
    """expected, low, high per bucket, flattened; NaN during warm-up."""

    def add(self, hour: float, tokens: int, band: tuple[float, float, float] | None) -> None:
        at = len(self.hours) - 1
        if at < 0 or hour > self.hours[at]:
            at = len(self.hours)
            self.hours.append(hour)
            self.hour_tokens.append(0.0)
            self.bands.extend((math.nan,) * 3)
        elif hour < self.hours[at]:  # a late event: rare, so a search (and insert) is fine
            at = bisect_left(self.hours, hour)
            if self.hours[at] != hour:
                self.hours.insert(at, hour)
                self.hour_tokens.insert(at, 0.0)
                for _ in range(3):
                    self.bands.insert(3 * at, math.nan)
        self.hour_tokens[at] += tokens
        if band is not None:
            self.bands[3 * at: 3 * at + 3] = array("f", band)


@dataclass(frozen=True)
class _AlertMark:
    user_id: str
    time: float
    kind: str
    score: float
    explanation: str


@dataclass(frozen=True)
class _Span:
    start: float
    end: float
    text: str
    benign: bool


class ReportBuilder:
    """Collects what the report needs while replay scores, in bounded memory."""

    def __init__(self, alert_threshold: float, config_version: str, source: str = "",
                 money: DetectorConfig | None = None) -> None:
        """``money``: the configuration whose budgets (priced by its table) are drawn."""
        self.alert_threshold = alert_threshold
        self.config_version = config_version
        self.source = source
        self.events = 0
        self.first_time = math.inf
        self.last_time = -math.inf
        self.score_bins = [0] * SCORE_BINS
        self.alerts_by_kind: Counter[str] = Counter()
        """Incidents alerted (new alert_ids) by kind; escalations are counted apart."""
        self.escalations = 0
        self.alert_marks: list[_AlertMark] = []
        self.users: dict[str, _UserSeries] = {}
        self.budget_curves = (BudgetCurves(money.budgets, money.prices)
                              if money is not None and money.budgets.any else None)
        self.verdicts: list[FeedbackVerdict] = []
        self.silenced: Counter[str] = Counter()
        """Alerts a verdict or a calendar window silenced, by why."""

    def add_verdicts(self, verdicts: list[FeedbackVerdict]) -> None:
        """The verdicts the run applied, to draw on their users' timelines."""
        self.verdicts.extend(verdicts)

    def observe(self, event: TokenUsageEvent, score: float, alerts: list[AnomalyEvent],
                band: tuple[float, float, float] | None,
                escalations: frozenset[str] = frozenset()) -> None:
        """One scored (non-duplicate) event, its alerts, and its user's band after it.

        ``escalations``: ids of those alerts that re-publish an open incident
        (:attr:`detectors.EventScore.escalations`), counted apart from new ones.
        """
        time = event.epoch_seconds
        self.events += 1
        self.first_time, self.last_time = min(self.first_time, time), max(self.last_time, time)
        self.score_bins[min(SCORE_BINS - 1, max(0, int(score * SCORE_BINS)))] += 1
        series = self.users.get(event.user_id)
        if series is None:
            series = self.users[event.user_id] = _UserSeries()
        series.team = event.team or series.team
        series.events += 1
        series.tokens += event.total_tokens
        series.add(time - time % HOUR, event.total_tokens, band)
        for alert in alerts:
            if alert.alert_id in escalations:
                self.escalations += 1
            else:
                self.alerts_by_kind[alert.kind] += 1
            if len(self.alert_marks) < MAX_ALERT_MARKS:
                self.alert_marks.append(_AlertMark(alert.user_id, alert.event_time.timestamp(),
                                                   alert.kind, alert.score, alert.explanation))

    def observe_scored(self, event: TokenUsageEvent, result: EventScore,
                       state: UserState) -> None:
        """What ``replay`` hands over: a scored event, its result and its user's state."""
        self.observe(event, result.score, result.alerts, hour_band(state), result.escalations)
        if self.budget_curves is not None:
            self.budget_curves.observe(event, result.alerts)

    def write(self, path: Path, evaluation: Evaluation | None = None) -> None:
        Path(path).write_text(self.render(evaluation), encoding="utf-8")

    def render(self, evaluation: Evaluation | None = None) -> str:
        """The whole page as one string."""
        parts = [self._header()]
        if evaluation is not None:
            parts.append(_evaluation_section(evaluation))
        parts.append(self._score_section())
        if self.budget_curves is not None:
            parts.append(self.budget_curves.section())
        parts.append(self._users_section(evaluation))
        return _PAGE.format(title=html.escape(f"tokenradar backtest {self.source}".strip()),
                            body="\n".join(parts))

    # --- sections ---------------------------------------------------------------------

    def _header(self) -> str:
        kinds = ", ".join(f"{kind} {count:,}" for kind, count in
                          sorted(self.alerts_by_kind.items())) or "none"
        span = (f"{_date(self.first_time)} to {_date(self.last_time)} UTC"
                if self.events else "no events")
        figures = [("events", f"{self.events:,}"), ("users", f"{len(self.users):,}"),
                   ("event time", span),
                   ("alerts", f"{sum(self.alerts_by_kind.values()):,} ({kinds}), "
                              f"{self.escalations:,} escalations"),
                   ("alert threshold", f"{self.alert_threshold:g}"),
                   ("config_version", self.config_version)]
        if self.verdicts or self.silenced:
            given = Counter(verdict.verdict for verdict in self.verdicts)
            figures.insert(-2, ("verdicts", (
                ", ".join(f"{value} {count:,}" for value, count in sorted(given.items()))
                or "none") + f"; alerts silenced by verdicts {self.silenced['verdict']:,}, "
                f"by calendar windows {self.silenced['calendar']:,}"))
        if self.source:
            figures.insert(0, ("input", self.source))
        rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                       for k, v in figures)
        return f'<h1>tokenradar backtest</h1>\n<table class="facts">{rows}</table>'

    def _score_section(self) -> str:
        left, right, top, bar_height = 140.0, 20.0, 14.0, 200.0  # room for kind names
        kinds = sorted({mark.kind for mark in self.alert_marks})
        height = top + bar_height + 40 + 22 * len(kinds) + 10
        x = LinearScale(0.0, 1.0, left, WIDTH - right)
        ticks = decade_ticks(1, max(10, max(self.score_bins)))
        y = LogScale(ticks[0], ticks[-1], top + bar_height, top)
        parts = [log_y_axis(y, left, WIDTH - right, "events (log)", ticks)]
        for index, count in enumerate(self.score_bins):
            if count:
                x0, x1 = x(index / SCORE_BINS), x((index + 1) / SCORE_BINS)
                parts.append(element("rect", title=f"{count:,} events", class_="bar", x=x0 + 0.5,
                                     y=y(count) - 1, width=x1 - x0 - 1,
                                     height=top + bar_height - y(count) + 1, fill="#6f8fd8"))
        axis_y = top + bar_height
        for tick in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
            parts.append(element("text", f"{tick:g}", x=x(tick), y=axis_y + 14,
                                 text_anchor="middle", class_="tick"))
        parts.append(element("text", "event score (highest detector score, 0 to 1)",
                             x=(left + WIDTH - right) / 2, y=axis_y + 30,
                             text_anchor="middle", class_="label"))
        threshold = x(self.alert_threshold)
        parts.append(element("line", x1=threshold, x2=threshold, y1=top, y2=height - 6,
                             stroke="#c00", stroke_dasharray="5 3"))
        parts.append(element("text", f"alert threshold {self.alert_threshold:g}",
                             x=threshold - 4, y=top + 10, text_anchor="end", fill="#c00",
                             class_="tick"))
        for row, kind in enumerate(kinds):
            row_y = axis_y + 48 + 22 * row
            parts.append(element("text", f"{kind} ({self.alerts_by_kind[kind]:,})", x=left - 6,
                                 y=row_y + 4, text_anchor="end", class_="tick"))
            parts.append(element("line", x1=left, x2=WIDTH - right, y1=row_y, y2=row_y,
                                 stroke="#eee"))
            parts.extend(element("line", title=f"{kind} {m.score:.2f}: {m.user_id}",
                                 class_="alert-score", x1=x(m.score), x2=x(m.score),
                                 y1=row_y - 7, y2=row_y + 7, stroke=_colour(kind),
                                 stroke_width=2, opacity=0.6)
                         for m in self.alert_marks if m.kind == kind)
        chart = svg(parts, WIDTH, height, "histogram of event scores, and alert scores by kind")
        return ("<h2>Score distribution</h2>\n<p>Every scored event by its score (log count); "
                "below, each alert's score, one row per alert kind.</p>\n" + chart)

    def _users_section(self, evaluation: Evaluation | None) -> str:
        spans = _spans_by_user(evaluation)
        chosen = self._interesting_users(evaluation, spans)
        quiet = self._quiet_users(set(chosen) | set(spans))
        marks: dict[str, list[_AlertMark]] = {}
        for mark in self.alert_marks:
            marks.setdefault(mark.user_id, []).append(mark)
        verdicts: dict[str, list[FeedbackVerdict]] = {}
        for verdict in self.verdicts:
            verdicts.setdefault(verdict.user_id, []).append(verdict)
        parts = ["<h2>Usage of selected users</h2>",
                 "<p>Tokens per active hour (log scale, UTC), the user's expected band "
                 "(baseline mean, &plusmn;2&sigma;, after each hour), alerts by kind, "
                 "people's verdicts (a diamond when given, the silence as a strip along "
                 "the floor), and labelled spans. All plots share one time axis.</p>"]
        for user_id in chosen + quiet:
            series = self.users[user_id]
            team_id = f"team:{series.team}"
            user_marks = marks.get(user_id, []) + marks.get(team_id, [])
            parts.append(self._user_plot(user_id, series, user_marks, spans.get(user_id, []),
                                         quiet=user_id in quiet,
                                         verdicts=verdicts.get(user_id, [])
                                         + verdicts.get(team_id, [])))
        if not chosen + quiet:
            parts.append("<p>No users.</p>")
        return "\n".join(parts)

    def _interesting_users(self, evaluation: Evaluation | None,
                           spans: dict[str, list[_Span]]) -> list[str]:
        """Detected, missed, falsely alerted and benign users, taken in turn, at most 16."""
        alerted = Counter(mark.user_id for mark in self.alert_marks if mark.user_id in self.users)
        judged = list(dict.fromkeys(verdict.user_id for verdict in self.verdicts))
        groups: list[list[str]] = []
        if evaluation is not None:
            detected = [o.label.user_id for o in evaluation.outcomes if o.detected]
            missed = [o.label.user_id for o in evaluation.outcomes if not o.detected]
            labelled = set(spans)
            false_only = [u for u, _ in alerted.most_common() if u not in labelled]
            benign = [label.user_id for label in evaluation.benign_labels]
            members = [m for o in evaluation.outcomes for m in o.label.members]
            groups = [detected, missed, false_only, judged, benign, members]
        else:
            groups = [[user for user, _ in alerted.most_common()], judged]
        chosen: list[str] = []
        queues = [[u for u in group if u in self.users] for group in groups]
        while len(chosen) < PLOTTED_USERS and any(queues):
            for queue in queues:
                while queue and queue[0] in chosen:
                    queue.pop(0)
                if queue and len(chosen) < PLOTTED_USERS:
                    chosen.append(queue.pop(0))
        return chosen

    def _quiet_users(self, exclude: set[str]) -> list[str]:
        """Users with no alert and no label, as typical as possible: around the median."""
        alerted = {mark.user_id for mark in self.alert_marks}
        quiet = sorted((series.tokens, user) for user, series in self.users.items()
                       if user not in exclude and user not in alerted)
        untouched = [(tokens, user) for tokens, user in quiet  # not even a team alert
                     if f"team:{self.users[user].team}" not in alerted]
        if len(untouched) >= QUIET_USERS:
            quiet = untouched
        middle = len(quiet) // 2
        return [user for _, user in quiet[max(0, middle - 1): middle - 1 + QUIET_USERS]]

    def _user_plot(self, user_id: str, series: _UserSeries, marks: list[_AlertMark],
                   spans: list[_Span], quiet: bool,
                   verdicts: list[FeedbackVerdict] | None = None) -> str:
        left, right, top, height = 70.0, 20.0, 40.0, 230.0
        bottom = height - 36
        x = LinearScale(self.first_time, max(self.last_time, self.first_time + HOUR),
                        left, WIDTH - right)
        values = [v for v in series.hour_tokens if v > 0]
        values += [v for v in series.bands if v > 0 and not math.isnan(v)]
        ticks = decade_ticks(min(values, default=1.0), max(values, default=10.0))
        y = LogScale(ticks[0], ticks[-1], bottom, top)
        parts = []
        for span in spans:
            x0, x1 = max(left, x(span.start)), min(WIDTH - right, x(span.end))
            parts.append(element("rect", title=span.text, class_="span", x=x0, y=top,
                                 width=max(2.0, x1 - x0), height=bottom - top,
                                 fill=BENIGN_FILL if span.benign else INCIDENT_FILL,
                                 opacity=0.28))
            parts.append(element("text", span.text, x=x0 + 3, y=bottom - 4, class_="tick"))
        parts.append(log_y_axis(y, left, WIDTH - right, "tokens / hour", ticks))
        parts.append(time_axis(x, self.first_time, self.last_time, top, bottom))
        for segment in _segments(series, x):
            banded = [(px, b) for px, _, b in segment if b is not None]
            if len(banded) == 1:  # a lone hour: widen it so its band shows
                banded = [(banded[0][0] - 2, banded[0][1]), (banded[0][0] + 2, banded[0][1])]
            if banded:
                upper = [(px, y(b[2])) for px, b in banded]
                lower = [(px, y(b[1])) for px, b in reversed(banded)]
                parts.append(element("polygon", points=points(upper + lower), fill=BAND_FILL,
                                     opacity=0.3))
                parts.append(element("polyline", points=points([(px, y(b[0])) for px, b in banded]),
                                     fill="none", stroke="#2f4fa8", stroke_dasharray="4 2"))
            parts.append(element("polyline", points=points([(px, y(t)) for px, t, _ in segment]),
                                 fill="none", stroke="#222", stroke_width=1.2))
            if len(segment) == 1:
                parts.append(element("circle", cx=segment[0][0], cy=y(segment[0][1]), r=1.5,
                                     fill="#222"))
        parts.extend(_alert_marks(marks, user_id, x, top, bottom))
        parts.extend(_verdict_marks(verdicts or [], x, left, WIDTH - right, bottom))
        parts.append(_legend(sorted({m.kind for m in marks}), spans, left, 14.0))
        alerts = Counter(m.kind for m in marks)
        summary = [f"team {series.team or '-'}", f"{series.events:,} events",
                   f"{short_count(series.tokens)} tokens",
                   "alerts: " + (", ".join(f"{k} {n}" for k, n in sorted(alerts.items()))
                                 or "none")]
        title = f"{user_id}{' (quiet user, for contrast)' if quiet else ''}"
        return (f"<h3>{html.escape(title)}</h3>\n<p class=\"sub\">"
                f"{html.escape(' · '.join(summary))}</p>\n"
                + svg(parts, WIDTH, height, f"hourly tokens of {user_id}"))


def _alert_marks(marks: list[_AlertMark], user_id: str, x: LinearScale, top: float,
                 bottom: float) -> list[str]:
    """A line and a flag per alert; alerts a few pixels apart share one stacked caption."""
    clusters: list[list[_AlertMark]] = []
    for mark in sorted(marks, key=lambda m: m.time):
        if clusters and x(mark.time) - x(clusters[-1][0].time) < 8:
            clusters[-1].append(mark)
        else:
            clusters.append([mark])
    parts, row_ends = [], [-math.inf] * max(1, int((bottom - top - 8) // 11))
    for cluster in clusters:
        lines = []
        for mark in cluster:
            px, colour, team_alert = x(mark.time), _colour(mark.kind), mark.user_id != user_id
            text = f"{mark.kind}{' (team)' if team_alert else ''} {mark.score:.2f}"
            lines.append((text, colour))
            parts.append(group([
                element("line", x1=px, x2=px, y1=top, y2=bottom, stroke=colour,
                        stroke_width=1.5, stroke_dasharray="3 2" if team_alert else None),
                element("polygon", points=points([(px - 5, top - 8), (px + 5, top - 8),
                                                  (px, top)]), fill=colour)],
                title=f"{text} at {_date(mark.time, minutes=True)}: {mark.explanation}",
                class_="alert"))
        captions = list(Counter(lines).items())
        anchor = x(cluster[0].time) + 6
        needed = min(len(captions), len(row_ends))
        row = next((r for r in range(len(row_ends) - needed + 1)
                    if all(end < anchor for end in row_ends[r: r + needed])), 0)
        for offset, ((text, colour), count) in enumerate(captions[:needed]):
            caption = f"{text} ×{count}" if count > 1 else text
            parts.append(element("text", caption, x=anchor, y=top + 10 + 11 * (row + offset),
                                 fill=colour, class_="tick"))
            row_ends[row + offset] = anchor + 6.2 * len(caption) + 4
    return parts


def _verdict_marks(verdicts: list[FeedbackVerdict], x: LinearScale, left: float, right: float,
                   bottom: float) -> list[str]:
    """Each verdict: a diamond at the time it was given, on the plot's floor; a false or
    expected one's silence a strip from then until it ends (within the plot)."""
    parts = []
    for verdict in verdicts:
        given = verdict.timestamp.timestamp()
        colour = VERDICT_COLOURS[verdict.verdict]
        text = (f"verdict {verdict.verdict} on {verdict.kind} alert {verdict.alert_id[:12]} "
                f"at {_date(given, minutes=True)}")
        if verdict.until is not None:
            text += f", silenced until {_date(verdict.until.timestamp(), minutes=True)}"
            x0 = max(left, x(given))
            x1 = min(right, x(verdict.until.timestamp()))
            if x1 > x0:
                parts.append(element("rect", x=x0, y=bottom - 7, width=x1 - x0, height=6,
                                     fill=colour, opacity=0.35,
                                     class_="silence", title=text))
        if verdict.note:
            text += f": {verdict.note}"
        px = x(given)
        if left <= px <= right:
            parts.append(element("polygon", points=points(
                [(px, bottom - 12), (px + 5, bottom - 6), (px, bottom), (px - 5, bottom - 6)]),
                fill=colour, stroke="#fff", stroke_width=0.8, class_="verdict", title=text))
    return parts


def _segments(series: _UserSeries, x: LinearScale
              ) -> list[list[tuple[float, float, tuple[float, float, float] | None]]]:
    """(x, tokens, band) points, 2 px apart at least, split where the user was idle."""
    columns: list[tuple[float, float, float, tuple[float, float, float] | None]] = []
    for index, hour in enumerate(series.hours):
        px = x(hour + HOUR / 2)
        raw = series.bands[3 * index: 3 * index + 3]
        band = None if math.isnan(raw[0]) else (raw[0], raw[1], raw[2])
        tokens = series.hour_tokens[index]
        if columns and px - columns[-1][1] < 2.0:  # several hours in one column: keep the max
            last = columns[-1]
            columns[-1] = (hour, last[1], max(last[2], tokens), band or last[3])
        else:
            columns.append((hour, px, tokens, band))
    segments: list[list[tuple[float, float, tuple[float, float, float] | None]]] = []
    previous = -math.inf
    for hour, px, tokens, band in columns:
        if hour - previous > 1.5 * HOUR and px - (segments[-1][-1][0] if segments else 0) > 4:
            segments.append([])
        segments[-1].append((px, tokens, band))
        previous = hour
    return segments


def _spans_by_user(evaluation: Evaluation | None) -> dict[str, list[_Span]]:
    spans: dict[str, list[_Span]] = {}
    if evaluation is None:
        return spans
    labels: list[tuple[IncidentLabel, str]] = []
    for outcome in evaluation.outcomes:
        delay = outcome.delay
        found = f"detected after {duration(delay)}" if delay is not None else "missed"
        labels.append((outcome.label, f"{outcome.label.kind} {outcome.label.incident_id}: {found}"))
    labels += [(label, f"benign {label.kind} {label.incident_id}")
               for label in evaluation.benign_labels]
    for label, text in labels:
        for user in (label.user_id, *label.members):
            spans.setdefault(user, []).append(
                _Span(label.start.timestamp(), label.end.timestamp(), text, label.benign))
    return spans


def _legend(kinds: list[str], spans: list[_Span], left: float, top: float) -> str:
    items = [("line", "#222", "tokens in the hour"), ("band", BAND_FILL, "expected band"),
             ("dash", "#2f4fa8", "expected")]
    if any(not span.benign for span in spans):
        items.append(("band", INCIDENT_FILL, "labelled incident"))
    if any(span.benign for span in spans):
        items.append(("band", BENIGN_FILL, "benign context"))
    items += [("alert", _colour(kind), f"{kind} alert") for kind in kinds]
    parts, at = [], left
    for shape, colour, text in items:
        if shape == "band":
            parts.append(element("rect", x=at, y=top - 8, width=18, height=10, fill=colour,
                                 opacity=0.45))
        elif shape == "alert":
            parts.append(element("polygon", points=points([(at + 4, top - 8), (at + 14, top - 8),
                                                           (at + 9, top + 1)]), fill=colour))
        else:
            parts.append(element("line", x1=at, x2=at + 18, y1=top - 3, y2=top - 3, stroke=colour,
                                 stroke_width=1.5,
                                 stroke_dasharray="4 2" if shape == "dash" else None))
        parts.append(element("text", text, x=at + 23, y=top + 1, class_="tick"))
        at += 33 + 6.2 * len(text)
    return group(parts)


def _evaluation_section(evaluation: Evaluation) -> str:
    parts = ["<h2>Evaluation against labels</h2>"]
    for title, rows in evaluation_tables(evaluation):
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in rows[0])
        body = "".join(("<tr class=\"total\">" if row[0] == "all" else "<tr>")
                       + "".join(f"<td>{html.escape(cell)}</td>" for cell in row)
                       + "</tr>" for row in rows[1:])
        parts.append(f"<h3>{html.escape(title)}</h3>\n<table class=\"figures\"><tr>{head}</tr>"
                     f"{body}</table>")
    parts += [f"<p class=\"sub\">{html.escape(note)}</p>" for note in evaluation_notes(evaluation)]
    return "\n".join(parts)


def _colour(kind: str) -> str:
    """A declared kind's own colour; any other kind's is picked by its name."""
    declared = [declaration.name for declaration in declared_kinds()]
    if kind in declared and declared.index(kind) < len(KIND_PALETTE):
        return KIND_PALETTE[declared.index(kind)]
    return KIND_PALETTE[sum(kind.encode()) % len(KIND_PALETTE)]


def _date(epoch: float, minutes: bool = False) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M" if minutes else "%Y-%m-%d")


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       margin: 24px; max-width: 1280px; }}
h1 {{ font-size: 22px; margin: 0 0 12px; }}
h2 {{ font-size: 18px; margin: 28px 0 6px; border-bottom: 1px solid #ddd; }}
h3 {{ font-size: 15px; margin: 18px 0 0; }}
p.sub {{ color: #555; margin: 0 0 2px; }}
table.facts th {{ text-align: left; padding-right: 16px; font-weight: 600; }}
table.figures {{ border-collapse: collapse; font-variant-numeric: tabular-nums; }}
table.figures th, table.figures td {{ padding: 3px 10px; text-align: right;
                                     border-bottom: 1px solid #e6e6e6; }}
table.figures th:first-child, table.figures td:first-child {{ text-align: left; }}
table.figures tr.total td {{ font-weight: 600; }}
svg {{ display: block; }}
svg .tick {{ font-size: 11px; fill: #444; }}
svg .label {{ font-size: 12px; fill: #222; }}
</style></head>
<body>
{body}
</body></html>
"""


def hour_band(state: UserState) -> tuple[float, float, float] | None:
    """(expected, low, high) tokens in an active hour for this user, for plots: the spike
    detector's hourly baseline, mean +/- two standard deviations (log scale); None until
    the user has one."""
    slot = state.slots.get(SPIKE.name)
    if slot is None or isinstance(slot, list):
        return None
    baseline = slot.per_hour
    if baseline.count < 2:
        return None
    spread = 2.0 * baseline.std
    return (10.0 ** baseline.mean, 10.0 ** (baseline.mean - spread),
            10.0 ** (baseline.mean + spread))
