"""Reading a detector configuration file, with errors that say what, where, how to fix."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tokenradar.schemas.config import DetectorConfig

_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\- ]+?)\s*\]\s*(#.*)?$")
_ARRAY_TABLE = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_.\- ]+?)\s*\]\]\s*(#.*)?$")
_DATETIME_ERRORS = ("timezone_aware", "datetime_type", "datetime_parsing")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*=")
_NESTED = re.compile(r"^(teams\.[^:\s]+): (.*)$")
REMOVED_KEYS: dict[tuple[str, ...], str] = {
    ("creep", "threshold"): "removed: creep's score is now a calibrated tail probability, "
    "judged by scoring.alert_threshold like every detector's; delete this line",
    **{("gaming", key): "removed: padding is now judged by how conversations start "
       "(gaming.min_input_ratio, min_conversations, min_run_minutes), not by repeated "
       "prompts or inflated requests in a row; delete this line"
       for key in ("min_repeat_share", "strong_input_ratio", "unrepeated_min_requests",
                   "min_requests")},
}
"""Keys earlier versions took, with what to do now (they apply in team overrides too)."""


class ConfigFileError(ValueError):
    """A configuration file that cannot be used; the message lists every problem."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{path}: {len(problems)} problem(s) in the configuration:\n{listing}")


def load_config(path: Path | str) -> DetectorConfig:
    """Read and validate a TOML detector configuration."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(path, [f"cannot read the file: {exc.strerror}"]) from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> DetectorConfig:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(path, [f"not valid TOML: {exc}"]) from None
    try:
        return DetectorConfig.model_validate(document)
    except ValidationError as exc:
        errors = exc.errors()
    if document.get("teams"):
        # Checks over the whole file (teams' overrides) run only once every key is valid:
        # check the overrides alone too, so one pass lists every problem.
        try:
            DetectorConfig.model_validate({"teams": document["teams"]})
        except ValidationError as exc:
            errors += exc.errors()
    lines = _key_lines(text)
    problems = [problem for error in errors for problem in _problems(error, lines)]
    raise ConfigFileError(path, list(dict.fromkeys(problems)))


def _problems(error: Any, lines: dict[str, int]) -> list[str]:
    """One validation error as problem lines; a check over the whole file may give several."""
    message = str(error["msg"]).removeprefix("Value error, ")
    nested = [_NESTED.match(line) for line in message.splitlines()]
    if error["loc"] or not nested or not all(nested):
        return [_problem(error, lines)]
    # A team's override: each line names its own key path.
    return [_problem({"loc": match.group(1).split("."), "msg": match.group(2),
                      "type": ("extra_forbidden" if match.group(2).startswith("Extra inputs")
                               else "nested")}, lines)
            for match in nested if match is not None]


def _problem(error: Any, lines: dict[str, int]) -> str:
    location = [str(part) for part in error["loc"]]
    key = ".".join(location) or "(top level)"
    line = next((lines[".".join(location[:n])] for n in range(len(location), 0, -1)
                 if ".".join(location[:n]) in lines), None)
    where = f"line {line}, " if line is not None else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in _DATETIME_ERRORS:
        message = ("give a date and time with an offset, such as 2026-11-16T09:00:00Z "
                   f"(got {error.get('input')})")
    elif error["type"] == "extra_forbidden":
        message = REMOVED_KEYS.get(tuple(location[-2:]),
                                   "unknown key: check its spelling against the example "
                                   "configuration")
    elif "input" in error and not isinstance(error["input"], dict):
        message += f" (got {error['input']!r})"
    return f"{where}key '{key}': {message}"


def _key_lines(text: str) -> dict[str, int]:
    """Line number of each table and key, by dotted path, for pointing at errors."""
    lines: dict[str, int] = {}
    table = ""
    arrays: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if match := _ARRAY_TABLE.match(line):  # [[calendar]]: calendar.0, calendar.1, ...
            name = match.group(1).replace(" ", "")
            table = f"{name}.{arrays.setdefault(name, 0)}"
            arrays[name] += 1
            lines.setdefault(table, number)
        elif match := _TABLE.match(line):
            table = match.group(1).replace(" ", "")
            lines.setdefault(table, number)
        elif match := _KEY.match(line):
            path = f"{table}.{match.group(1)}" if table else match.group(1)
            lines.setdefault(path, number)
    return lines
