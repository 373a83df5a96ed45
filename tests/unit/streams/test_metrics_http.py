"""The metrics port: /metrics, and the probes answering 200 or 503 with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest
from conftest import Clock
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tokenradar.lab.brokers import free_port
from tokenradar.streams.health import WorkerHealth
from tokenradar.streams.metrics import WorkerMetrics


@pytest.fixture
def served(clock: Clock) -> Iterator[tuple[str, WorkerHealth]]:
    health = WorkerHealth(stall_seconds=60, clock=clock)
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.follow(health)
    port = free_port()
    server = metrics.serve(port, "127.0.0.1", health)
    yield f"http://127.0.0.1:{port}", health
    server.shutdown()
    server.server_close()


def get(url: str) -> tuple[int, str]:
    try:
        with urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except HTTPError as error:
        return error.code, error.read().decode()


def gauges(base: str) -> dict[str, float]:
    text = get(base + "/metrics")[1]
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name in ("tokenradar_stalled", "tokenradar_consumer_lag",
                          "tokenradar_assigned_partitions")}


def test_probes_answer_503_with_the_reason_then_200(
    served: tuple[str, WorkerHealth], clock: Clock
) -> None:
    base, health = served
    assert get(base + "/healthz") == (200, "alive\n")
    assert get(base + "/readyz") == (503, "starting: joining the group\n")
    health.observe(assigned=3, waiting=0)
    assert get(base + "/readyz") == (200, "ready: 3 partitions assigned\n")


def test_stall_gauges_turn_red_at_scrape_time(
    served: tuple[str, WorkerHealth], clock: Clock
) -> None:
    base, health = served
    health.observe(assigned=2, waiting=7)
    assert gauges(base) == {"tokenradar_stalled": 0, "tokenradar_consumer_lag": 7,
                            "tokenradar_assigned_partitions": 2}
    clock.now += 61  # no sample since: the event loop is blocked, the HTTP thread answers
    assert gauges(base)["tokenradar_stalled"] == 1
    assert get(base + "/readyz")[0] == 503
    assert get(base + "/healthz") == (503, "the event loop has not run for 61 s\n")


def test_unknown_path_is_404_not_metrics(served: tuple[str, WorkerHealth]) -> None:
    base, _ = served
    status, body = get(base + "/heathz")
    assert status == 404 and "tokenradar_" not in body
