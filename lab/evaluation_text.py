"""An evaluation as text: the tables ``tokenradar evaluate`` prints (and the HTML report
shows), and the command itself."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

from tokenradar.lab.evaluate import (
    MATCH_AFTER,
    MATCH_BEFORE,
    AlertFigures,
    Evaluation,
    IncidentFigures,
    evaluate,
)
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


def verdict_comparison(without: Evaluation, with_verdicts: Evaluation) -> list[list[str]]:
    """Rows of precision (and false alerts, recall) without and with people's verdicts."""
    rows = [["alert kind", "alerts", "precision", "false", "alerts with verdicts",
             "precision with verdicts", "false with verdicts"]]
    before = {f.kind: f for f in without.alerts_by_kind}
    after = {f.kind: f for f in with_verdicts.alerts_by_kind}
    kinds = [*before, *(kind for kind in after if kind not in before)]
    for kind, a, b in [*((k, before.get(k), after.get(k)) for k in kinds),
                       ("all", without.alerts_overall, with_verdicts.alerts_overall)]:
        rows.append([kind, *_alert_cells(a), *_alert_cells(b)])
    rows.append(["recall (all incidents)", "", _share(without.overall.recall), "", "",
                 _share(with_verdicts.overall.recall), ""])
    return rows


def _alert_cells(figures: AlertFigures | None) -> list[str]:
    if figures is None:
        return ["0", "-", "0"]
    return [str(figures.alerts), _share(figures.precision), str(figures.false_alerts)]


def run_evaluation(labels_path: Path, alerts_path: Path, events_path: Path | None = None,
                   json_out: Path | None = None, progress: ProgressHook | None = None,
                   alerts_with_feedback: Path | None = None, verdicts_out: Path | None = None
                   ) -> Evaluation:
    """What ``tokenradar evaluate`` does: read, evaluate, print, and write the JSON.

    Reading the events file is the long part: ``progress`` hears its bytes read.
    ``alerts_with_feedback``: the alerts of the same run with verdicts applied, to print
    precision with and without them; ``verdicts_out``: write the verdicts a reviewer who
    knew the labels would give (:mod:`tokenradar.lab.reviewer`), for ``replay --feedback``.
    """
    days = (count_active_user_days(events_path, progress) if events_path is not None
            else None)
    labels, alerts = load_labels(labels_path), load_alerts(alerts_path)
    evaluation = evaluate(labels, alerts, days)
    print(format_evaluation(evaluation))
    document = evaluation.to_dict()
    if alerts_with_feedback is not None:
        judged = evaluate(labels, load_alerts(alerts_with_feedback), days)
        print("\nPrecision without and with verdicts\n"
              + text_table(verdict_comparison(evaluation, judged)))
        document["with_verdicts"] = judged.to_dict()
    if verdicts_out is not None:
        from tokenradar.lab.reviewer import review

        verdicts = review(labels, alerts)
        verdicts_out.write_text("".join(v.model_dump_json(exclude_none=True) + "\n"
                                        for v in verdicts), encoding="utf-8")
        given = Counter(v.verdict for v in verdicts)
        listed = ", ".join(f"{value} {count}" for value, count in sorted(given.items()))
        print(f"\nwrote {len(verdicts)} verdicts ({listed}) to {verdicts_out}")
    if json_out is not None:
        json_out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return evaluation
