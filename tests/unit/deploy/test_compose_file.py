"""docker-compose.yml: valid Compose, two workers sharing one group, the simulator
feeding them, Prometheus scraping both, every image pinned, every mounted file there."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tokenradar.cli import _parser
from tokenradar.schemas import WorkerSettings

ROOT = Path(__file__).parents[3]
COMPOSE_SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(document)]


def worker_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in compose["services"].items()
            if service.get("command", [None])[0] == "worker"}


def settings_of(service: dict[str, Any]) -> WorkerSettings:
    """What the worker in ``service`` runs with: its command, then its environment."""
    args = _parser().parse_args(service["command"])
    options = {k: v for k, v in vars(args).items() if k != "run"}
    return WorkerSettings.from_sources(options, environ=service.get("environment", {}))


def test_compose_file_validates_against_the_compose_specification(compose) -> None:
    assert compose_errors(compose) == []


def test_compose_schema_rejects_a_misspelt_key(compose) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["worker-1"]["enviroment"] = {}
    assert any("enviroment" in error for error in compose_errors(broken))


def test_two_workers_share_the_partitions_in_one_group(compose) -> None:
    workers = worker_services(compose)
    assert len(workers) == 2
    settings = [settings_of(service) for service in workers.values()]
    assert len({s.group_id for s in settings}) == 1
    assert len({s.input_topic for s in settings}) == 1
    assert all(s.metrics_port == 9100 and s.metrics_host == "0.0.0.0" for s in settings)
    create = compose["services"]["create-topics"]["environment"]
    assert all(s.partitions == int(create["PARTITIONS"]) >= len(workers) for s in settings)


def test_simulator_produces_to_the_workers_input_topic(compose) -> None:
    simulator = compose["services"]["simulator"]
    args = _parser().parse_args(simulator["command"])
    worker = settings_of(next(iter(worker_services(compose).values())))
    assert args.topic == worker.input_topic
    assert WorkerSettings(broker=args.broker).broker == worker.broker


def test_prometheus_scrapes_every_worker(compose) -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "tokenradar"]
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    workers = worker_services(compose)
    assert targets == {f"{s.get('hostname', name)}:{settings_of(s).metrics_port}"
                       for name, s in workers.items()}


def test_every_image_is_pinned_to_a_version(compose) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        if "build" in service:
            continue  # built here from deploy/Dockerfile
        assert re.search(r":v?\d+\.\d+\.\d+$", image) or "@sha256:" in image, (name, image)


def test_every_bind_mounted_file_exists(compose) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_grafana_provisioning_points_at_the_compose_prometheus_and_dashboards(compose) -> None:
    grafana = ROOT / "deploy" / "grafana"
    (source,) = yaml.safe_load(
        (grafana / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090" and "prometheus" in compose["services"]
    (provider,) = yaml.safe_load(
        (grafana / "provisioning" / "dashboards" / "tokenradar.yml").read_text())["providers"]
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    dashboard = json.loads((grafana / "dashboards" / "tokenradar.json").read_text())
    used = {panel["datasource"]["uid"] for panel in dashboard["panels"]}
    assert used == {source["uid"]}
