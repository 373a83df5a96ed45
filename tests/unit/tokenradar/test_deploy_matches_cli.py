"""deploy/ and docker-compose.yml call the CLI; a renamed option must fail here, not in prod."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tokenradar.cli import _parser
from tokenradar.schemas import WorkerSettings

ROOT = Path(__file__).parents[3]


def _json_list(text: str, key: str, indent: str = r"\s*") -> list[str]:
    """A one-line ``key: ["a", "b"]`` / ``KEY ["a"]`` value, which is JSON in YAML and Docker."""
    match = re.search(rf"^{indent}{key}:?\s+(\[.*\])\s*$", text, re.MULTILINE)
    assert match, f"no one-line {key} list"
    return list(json.loads(match.group(1)))


@pytest.mark.parametrize("service", ["worker-1", "worker-2"])
def test_compose_worker_command_parses_with_the_cli(service: str) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = compose["services"][service]["command"]
    args = _parser().parse_args(command)
    assert command[0] == "worker"
    settings = WorkerSettings.from_sources(
        {k: v for k, v in vars(args).items() if k != "run"}, environ={})
    assert settings.bootstrap_servers == ["kafka:19092"]
    assert settings.metrics_port == 9100


@pytest.mark.parametrize("name", ["TOKENRADAR_CONFIG", "TOKENRADAR_GROUP_ID",
                                  "TOKENRADAR_PARTITIONS", "TOKENRADAR_DATA_DIR",
                                  "TOKENRADAR_STALL_SECONDS"])
def test_compose_environment_names_real_settings(name: str) -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    assert re.search(rf"^\s+{name}:", compose, re.MULTILINE)
    assert name.removeprefix("TOKENRADAR_").lower() in WorkerSettings.model_fields


def test_dockerfile_runs_the_worker_through_the_tokenradar_command() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert _json_list(dockerfile, "ENTRYPOINT") == ["tokenradar"]
    command = _json_list(dockerfile, "CMD", indent="")  # not HEALTHCHECK's indented CMD
    assert command == ["worker"]
    _parser().parse_args(command)
