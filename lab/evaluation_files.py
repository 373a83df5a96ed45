"""Reading what an evaluation compares: labels, alerts, and the events' active user-days.

Bad input is an :class:`EvaluationInputError` naming the file and the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tokenradar.lab.evaluate import IncidentLabel
from tokenradar.progress import ProgressHook
from tokenradar.schemas import AnomalyEvent, InvalidEvent, parse_event

PROGRESS_EVERY_LINES = 1000


class EvaluationInputError(ValueError):
    """A labels, alerts or events file that cannot be read; the message names file and line."""


def load_labels(path: Path) -> list[IncidentLabel]:
    """The labels of a JSONL file; raises :class:`EvaluationInputError` naming the line."""
    labels = []
    for number, record in _json_lines(path):
        where = f"{path}:{number}"
        try:
            start, end = _timestamp(record, "start"), _timestamp(record, "end")
            members = record.get("members") or []
            if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
                raise ValueError("'members' must be a list of user ids")
            if not isinstance(record.get("benign", False), bool):
                raise ValueError("'benign' must be true or false")
            for key in ("incident_id", "kind", "user_id"):
                if not isinstance(record.get(key), str) or not record[key]:
                    raise ValueError(f"'{key}' must be a non-empty string")
            if end < start:
                raise ValueError(f"'end' ({record['end']}) is before 'start' ({record['start']})")
        except ValueError as exc:
            raise EvaluationInputError(f"{where}: bad label: {exc}") from None
        labels.append(IncidentLabel(record["incident_id"], record["kind"], record["user_id"],
                                    record.get("team"), start, end,
                                    benign=record.get("benign", False),
                                    members=tuple(members)))
    return labels


def load_alerts(path: Path) -> list[AnomalyEvent]:
    """The anomaly events of a JSONL file; raises :class:`EvaluationInputError` naming the line."""
    alerts = []
    for number, record in _json_lines(path):
        try:
            alerts.append(AnomalyEvent.model_validate(record))
        except ValidationError as exc:
            problems = "; ".join(f"field '{'.'.join(map(str, e['loc'])) or '(line)'}': {e['msg']}"
                                 for e in exc.errors(include_url=False)[:3])
            raise EvaluationInputError(f"{path}:{number}: not an anomaly event: {problems}"
                                       ) from None
    return alerts


def count_active_user_days(events_path: Path, progress: ProgressHook | None = None) -> int:
    """Distinct (user_id, UTC date) pairs with at least one event.

    Lines that ``replay`` would skip as invalid are skipped here too, so the count
    covers exactly the events that were scored. ``progress`` hears the bytes read.
    """
    days = set()
    try:
        with open(events_path, "rb") as source:
            for number, line in enumerate(source, start=1):
                if progress is not None and number % PROGRESS_EVERY_LINES == 0:
                    progress(source.tell(), f"{number:,} lines")
                if not line.strip():
                    continue
                try:
                    event = parse_event(line)
                except InvalidEvent:
                    continue
                days.add((event.user_id, event.timestamp.astimezone(UTC).date()))
    except OSError as exc:
        raise EvaluationInputError(f"{events_path}: cannot read: {exc.strerror}") from None
    return len(days)


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with open(path, encoding="utf-8") as source:
            for number, line in enumerate(source, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise EvaluationInputError(f"{path}:{number}: not valid JSON: {exc.msg}"
                                               ) from None
                if not isinstance(record, dict):
                    raise EvaluationInputError(f"{path}:{number}: expected a JSON object")
                yield number, record
    except OSError as exc:
        raise EvaluationInputError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise EvaluationInputError(f"{path}: not UTF-8 text: {exc.reason}") from None


def _timestamp(record: dict[str, Any], key: str) -> datetime:
    value = record.get(key)
    if not isinstance(value, str):
        raise ValueError(f"'{key}' must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'{key}' is not an RFC 3339 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"'{key}' has no UTC offset: {value!r}")
    return parsed
