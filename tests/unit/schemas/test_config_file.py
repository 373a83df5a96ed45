"""Reading a configuration file: errors name the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenradar.schemas import DetectorConfig
from tokenradar.schemas.config_file import ConfigFileError, load_config

EXAMPLE = Path(__file__).parents[3] / "examples" / "tokenradar.toml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "detectors.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_configuration_loads_and_equals_the_defaults_but_its_allowlist() -> None:
    example = load_config(EXAMPLE)
    assert example.allowlist.users  # the example shows how to allowlist service accounts
    assert example.model_copy(update={"allowlist": DetectorConfig().allowlist}) == DetectorConfig()


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, "")) == DetectorConfig()


def test_values_in_the_file_are_used(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "[rate]\nwindow_minutes = 5\n"))
    assert config.rate.window_minutes == 5


@pytest.mark.parametrize(("text", "line", "key"), [
    ("[scoring]\nalert_threshold = 0.6\ncooldwn_minutes = 10\n", 3, "scoring.cooldwn_minutes"),
    ("# comment\n\n[spike]\nenabled = true\nmin_ratio = 0.5\n", 5, "spike.min_ratio"),
    ("[rate]\nwindow_minutes = 'ten'\n", 2, "rate.window_minutes"),
    ("[spikes]\nenabled = true\n", 1, "spikes"),
])
def test_error_names_file_line_and_key(tmp_path: Path, text: str, line: int, key: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"line {line}, key '{key}'" in message


def test_every_problem_is_listed(tmp_path: Path) -> None:
    path = _write(tmp_path, "[scoring]\ntypo = 1\n[spike]\nmin_ratio = 0.5\n")
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    assert len(caught.value.problems) == 2


def test_unknown_key_message_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="check its spelling"):
        load_config(_write(tmp_path, "[drift]\ntreshold = 2\n"))


@pytest.mark.parametrize("text", ["[creep]\nthreshold = 7.0\n",
                                  "[teams.web.creep]\nthreshold = 7.0\n",
                                  "[gaming]\nmin_repeat_share = 0.2\n",
                                  "[teams.web.gaming]\nmin_requests = 8\n"])
def test_a_removed_key_says_it_was_removed_and_what_to_do(tmp_path: Path, text: str) -> None:
    key = text.splitlines()[1].split(" =")[0]
    with pytest.raises(ConfigFileError, match=f"{key}': removed: .* delete this line"):
        load_config(_write(tmp_path, text))


def test_invalid_toml_is_reported_as_such(tmp_path: Path) -> None:
    path = _write(tmp_path, "[scoring\n")
    with pytest.raises(ConfigFileError, match="not valid TOML") as caught:
        load_config(path)
    assert str(path) in str(caught.value)


def test_missing_file_is_reported_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigFileError, match="cannot read the file") as caught:
        load_config(path)
    assert str(path) in str(caught.value)


def test_team_override_errors_name_the_line_and_key_path(tmp_path: Path) -> None:
    path = _write(tmp_path, "[scoring]\nalert_threshold = 0.6\n\n[teams.research.spike]\n"
                            "min_ratoi = 3\n")
    with pytest.raises(ConfigFileError) as error:
        load_config(path)
    assert error.value.problems == [
        "line 5, key 'teams.research.spike.min_ratoi': unknown key: check its spelling "
        "against the example configuration"]


@pytest.mark.parametrize(("text", "key", "reason"), [
    ("[spike]\nenabled = \"yes\"\n", "spike.enabled", "valid boolean"),
    ("[spike]\nenabled = 1\n", "spike.enabled", "valid boolean"),
    ("[population_shift]\nmin_ratio = \"7\"\n", "population_shift.min_ratio", "valid number"),
    ("[scoring]\ndedupe_event_ids = 1.0\n", "scoring.dedupe_event_ids", "valid integer"),
    ("[teams.research.spike]\nenabled = \"no\"\n", "teams.research.spike.enabled",
     "valid boolean"),
])
def test_a_value_of_the_wrong_type_is_an_error_not_coerced(
        tmp_path: Path, text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_config(_write(tmp_path, text))
    (problem,) = caught.value.problems
    assert f"line 2, key '{key}'" in problem and reason in problem


def test_a_whole_number_is_accepted_where_a_decimal_is_expected(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "[spike]\nmin_ratio = 7\n[scoring]\n"
                                          "cooldown_minutes = 30\n"))
    assert config.spike.min_ratio == 7.0 and config.scoring.cooldown_minutes == 30.0


def test_an_unknown_key_in_a_team_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_config(_write(tmp_path, "[teams.research]\nfoo = 1\n"))
    (problem,) = caught.value.problems
    assert problem.startswith("line 2, key 'teams.research.foo': unknown key")
    assert "[teams.research.spike]" in problem
    assert "valid dictionary" not in problem


def test_every_problem_is_listed_in_one_pass_teams_included(tmp_path: Path) -> None:
    path = _write(tmp_path, "[scoring]\ntypo = 1\n"                       # line 2
                            "[spike]\nenabled = \"yes\"\n"                 # line 4
                            "[teams.research]\nfoo = 1\n"                  # line 6
                            "[teams.research.drift]\nmin_ratio = 0.5\n"    # line 8
                            "[teams.web.rate]\nwindow_minutes = 1.5\n")    # line 10
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    lines = [int(problem.split(",")[0].removeprefix("line ")) for problem in caught.value.problems]
    assert sorted(lines) == [2, 4, 6, 8, 10], caught.value.problems
