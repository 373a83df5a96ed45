"""An evaluation as text: the tables ``tokenradar evaluate`` prints (and the HTML report
shows), and the command itself."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from tokenradar.lab.evaluate import MATCH_AFTER, MATCH_BEFORE, Evaluation, IncidentFigures, evaluate
from tokenradar.lab.evaluation_files import count_active_user_days, load_alerts, load_labels
from tokenradar.progress import ProgressHook


def evaluation_tables(evaluation: Evaluation) -> list[tuple[str, list[list[str]]]]:
    """(title, rows) of each table, the first row the header; for text and for HTML."""
    rows = [["kind", "incidents", "detected", "recall", "kind recall", "median delay",
             "p90 delay", "alerts/incident (max)"]]
    for f in [*evaluation.by_kind, evaluation.overall]:
        rows.append([f.kind, str(f.incidents), str(f.detected), _share(f.recall),
                     _share(f.kind_recall), _delay(f.median_delay), _delay(f.p90_delay),
                     _per_incident(f)])
    tables = [("Incidents by labelled kind", rows)]

    rows = [["alert kind", "alerts", "matched", "precision", "false", "on benign",
             "false /1000 user-days"]]
    for a in [*evaluation.alerts_by_kind, evaluation.alerts_overall]:
        rows.append([a.kind, str(a.alerts), str(a.matched), _share(a.precision),
                     str(a.false_alerts), str(a.on_benign),
                     _number(a.false_alerts_per_1000_user_days)])
    days = evaluation.active_user_days
    tables.append((f"Alerts ({'n/a' if days is None else f'{days:,}'} active user-days)", rows))

    if evaluation.population_shifts:
        rows = [["population shift", "team", "benign", "members", "alerted", "share"]]
        rows += [[s.incident_id, s.team or "", "yes" if s.benign else "no", str(s.members),
                  str(s.members_alerted), _share(s.share)] for s in evaluation.population_shifts]
        rows.append(["all", "", "", str(sum(s.members for s in evaluation.population_shifts)),
                     str(sum(s.members_alerted for s in evaluation.population_shifts)),
                     _share(evaluation.population_shift_share)])
        tables.append(("Population shifts: members with an individual alert", rows))
    if evaluation.benign:
        rows = [["benign kind", "labels", "labels alerted", "false alerts"]]
        rows += [[b.kind, str(b.labels), str(b.labels_alerted), str(b.alerts)]
                 for b in evaluation.benign]
        tables.append(("Benign context (must not alert)", rows))
    return tables


def evaluation_notes(evaluation: Evaluation) -> list[str]:
    """The missed incidents and the matching rule, one sentence each."""
    notes = []
    missed = [o.label.incident_id for o in evaluation.outcomes if not o.detected]
    if missed:
        more = f" and {len(missed) - 12} more" if len(missed) > 12 else ""
        notes.append(f"missed: {', '.join(missed[:12])}{more}")
    before, after = MATCH_BEFORE / timedelta(minutes=1), MATCH_AFTER / timedelta(hours=1)
    notes.append(f"an alert matches a label of its user from {before:g} min before its start "
                 f"to {after:g} h after its end; kind recall counts only "
                 "alerts of the label's kind")
    return notes


def format_evaluation(evaluation: Evaluation) -> str:
    """Aligned plain-text tables of an evaluation, for a terminal."""
    out: list[str] = []
    for title, rows in evaluation_tables(evaluation):
        out += ["", title, text_table(rows)] if out else [title, text_table(rows)]
    return "\n".join(out + [""] + evaluation_notes(evaluation))


def text_table(rows: list[list[str]]) -> str:
    """Aligned columns, the first row a header underlined; the first column left-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) if i == 0 else cell.rjust(width)
                 for i, (cell, width) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _delay(delay: timedelta | None) -> str:
    return "-" if delay is None else duration(delay)


def duration(delay: timedelta) -> str:
    """A delay in the unit a person reads best: minutes, hours, then days.

    >>> [duration(timedelta(minutes=m)) for m in (12, 190, 11130)]
    ['12 min', '3.2 h', '7.7 days']
    """
    minutes = delay / timedelta(minutes=1)
    if minutes < 60:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / (24 * 60):.1f} days"


def _per_incident(f: IncidentFigures) -> str:
    if f.alerts_per_incident_mean is None:
        return "-"
    return f"{f.alerts_per_incident_mean:.1f} ({f.alerts_per_incident_max})"


def run_evaluation(labels_path: Path, alerts_path: Path, events_path: Path | None = None,
                   json_out: Path | None = None, progress: ProgressHook | None = None
                   ) -> Evaluation:
    """What ``tokenradar evaluate`` does: read, evaluate, print, and write the JSON.

    Reading the events file is the long part: ``progress`` hears its bytes read.
    """
    days = (count_active_user_days(events_path, progress) if events_path is not None
            else None)
    evaluation = evaluate(load_labels(labels_path), load_alerts(alerts_path), days)
    print(format_evaluation(evaluation))
    if json_out is not None:
        json_out.write_text(json.dumps(evaluation.to_dict(), indent=2) + "\n", encoding="utf-8")
    return evaluation
