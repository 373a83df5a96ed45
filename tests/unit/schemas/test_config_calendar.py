"""Calendar windows in the configuration: validated, with errors naming line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenradar.schemas import DetectorConfig
from tokenradar.schemas.config_file import ConfigFileError, parse_config

GOOD = """
[[calendar]]
name = "offsite"
start = 2026-11-16T00:00:00Z
end = 2026-11-18T00:00:00+01:00
teams = ["research"]
kinds = ["spike", "rate"]
learn = false
"""


def test_a_window_is_read_with_its_times_teams_and_kinds() -> None:
    (window,) = parse_config(GOOD, Path("good.toml")).calendar
    assert (window.name, window.teams, window.kinds) == ("offsite", ["research"],
                                                         ["spike", "rate"])
    assert (window.end - window.start).total_seconds() == 47 * 3600
    assert (window.silence, window.learn) == (True, False)


def test_a_configuration_without_windows_keeps_its_version() -> None:
    # Alerts carry the version: adding calendars to the code must not change old ones'.
    assert DetectorConfig().version == "d7a77da80f36"
    assert parse_config(GOOD, Path("good.toml")).version != DetectorConfig().version


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigFileError) as caught:
        parse_config(text, Path("bad.toml"))
    return caught.value.problems


def test_every_broken_window_is_named_by_line_and_key_saying_how_to_fix_it() -> None:
    problems = _problems("""[[calendar]]
name = "offsite"
start = 2026-11-18T00:00:00Z
end = 2026-11-16T00:00:00Z

[[calendar]]
name = "hackathon"
start = 2026-11-18T00:00:00
end = 2026-11-19
kinds = ["spikes"]
""")
    assert problems[0].startswith("line 1, key 'calendar.0': window 'offsite': end")
    assert "must be after start" in problems[0]
    assert problems[1].startswith("line 8, key 'calendar.1.start': give a date and time "
                                  "with an offset")
    assert problems[2].startswith("line 9, key 'calendar.1.end': give a date and time")
    assert problems[3].startswith("line 10, key 'calendar.1.kinds': 'spikes' is not a kind")
    assert len(problems) == 4


def test_a_window_that_neither_silences_nor_stops_learning_is_an_error() -> None:
    (problem,) = _problems("""[[calendar]]
name = "nothing"
start = 2026-11-16T00:00:00Z
end = 2026-11-17T00:00:00Z
silence = false
""")
    assert "window 'nothing' does nothing" in problem and "learn = false" in problem


def test_calendars_cannot_be_overridden_per_team() -> None:
    (problem,) = _problems("[teams.research.calendar]\nname = 'x'\n")
    assert "teams.research.calendar" in problem and "cannot be overridden per team" in problem
