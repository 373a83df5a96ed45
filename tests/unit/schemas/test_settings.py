"""WorkerSettings: options beat the environment, which beats defaults; broker URLs checked."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tokenradar.schemas import WorkerSettings
from tokenradar.schemas.settings import LIVE_STATES


def test_defaults_apply_when_nothing_is_given() -> None:
    settings = WorkerSettings.from_sources({}, environ={})
    assert settings.input_topic == "token-usage"
    assert settings.alerts_topic == "token-anomalies"
    assert settings.dlq_topic == "token-usage.dlq"


def test_environment_overrides_the_default() -> None:
    settings = WorkerSettings.from_sources(
        {}, environ={"TOKENRADAR_GROUP_ID": "from-env", "TOKENRADAR_METRICS_PORT": "9100"})
    assert settings.group_id == "from-env"
    assert settings.metrics_port == 9100


def test_option_overrides_the_environment() -> None:
    settings = WorkerSettings.from_sources(
        {"group_id": "from-option", "broker": "opt:1"},
        environ={"TOKENRADAR_GROUP_ID": "from-env", "TOKENRADAR_BROKER": "env:2"})
    assert settings.group_id == "from-option"
    assert settings.bootstrap_servers == ["opt:1"]


def test_option_left_unset_falls_back_to_the_environment() -> None:
    settings = WorkerSettings.from_sources(
        {"group_id": None}, environ={"TOKENRADAR_GROUP_ID": "from-env"})
    assert settings.group_id == "from-env"


def test_empty_environment_variable_is_ignored() -> None:
    assert WorkerSettings.from_sources({}, environ={"TOKENRADAR_GROUP_ID": ""}).group_id \
        == "tokenradar"


def test_bad_value_from_environment_is_rejected_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="partitions"):
        WorkerSettings.from_sources({}, environ={"TOKENRADAR_PARTITIONS": "zero"})


@pytest.mark.parametrize(("url", "servers"), [
    ("kafka://localhost:9092", ["localhost:9092"]),
    ("localhost:9092", ["localhost:9092"]),
    ("kafka://a:9092,b:9093", ["a:9092", "b:9093"]),
    ("kafka:19092", ["kafka:19092"]),
    ("  10.0.0.1:9092 ", ["10.0.0.1:9092"]),
    ("a:9092, b:9093", ["a:9092", "b:9093"]),
])
def test_broker_url_forms_are_accepted(url: str, servers: list[str]) -> None:
    settings = WorkerSettings(broker=url)
    assert settings.bootstrap_servers == servers
    assert settings.broker.startswith("kafka://")


@pytest.mark.parametrize("url", [
    "", "kafka://", "localhost", "localhost:port", "a:9092,", "kafka://a:9092,b",
    "http://localhost:9092", ":9092",
])
def test_malformed_broker_urls_are_rejected_saying_the_form(url: str) -> None:
    with pytest.raises(ValidationError, match="host:port"):
        WorkerSettings(broker=url)


def test_unknown_setting_is_rejected() -> None:
    with pytest.raises(ValidationError):
        WorkerSettings(brokers="a:1")  # type: ignore[call-arg]


def test_decoded_users_default_to_replays_and_come_from_the_environment() -> None:
    assert WorkerSettings.from_sources({}, environ={}).decoded_users == LIVE_STATES
    settings = WorkerSettings.from_sources({}, environ={"TOKENRADAR_DECODED_USERS": "10240"})
    assert settings.decoded_users == 10_240
    with pytest.raises(ValidationError, match="decoded_users"):
        WorkerSettings.from_sources({"decoded_users": "0"}, environ={})


def test_stall_seconds_defaults_to_a_minute_and_comes_from_the_environment() -> None:
    assert WorkerSettings.from_sources({}, environ={}).stall_seconds == 60
    settings = WorkerSettings.from_sources({}, environ={"TOKENRADAR_STALL_SECONDS": "15"})
    assert settings.stall_seconds == 15
    with pytest.raises(ValidationError, match="stall_seconds"):
        WorkerSettings.from_sources({"stall_seconds": "0"}, environ={})


def test_every_worker_setting_is_an_option_and_in_the_readme_with_its_default() -> None:
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser()
    WorkerSettings.add_options(parser)
    options = {action.dest for action in parser._actions if action.dest != "help"}
    secrets = set(WorkerSettings.secret_fields())
    assert secrets == {"sasl_password", "ssl_key_password", "pseudonym_key"}
    assert options == ({name for name in WorkerSettings.model_fields if name not in secrets}
                       | {name + "_file" for name in secrets})  # never a secret on a command line
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line.split("|")[2].strip()
            for line in readme.splitlines() if line.startswith("| `TOKENRADAR_")}
    for name, field in WorkerSettings.model_fields.items():
        variable = "TOKENRADAR_" + name.upper()
        assert variable in rows, f"README's worker table lacks {variable}"
        if name in secrets:
            assert variable + "_FILE" in rows, f"README's worker table lacks {variable}_FILE"
        default = field.default
        if default is not None and not isinstance(default, bool):
            assert str(default).removesuffix(".0") in rows[variable], (variable, rows[variable])
