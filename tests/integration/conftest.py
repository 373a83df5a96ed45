"""A real broker for the session (env -> testcontainers -> embedded Tansu), fresh
topic and group names per test, and workers run as subprocesses, stopped by PID."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from worker_harness import PARTITIONS, Topics, Worker

from tokenradar.lab.brokers import kafka_broker
from tokenradar.streams.broker import create_topics


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    with kafka_broker() as url:
        yield url


@pytest.fixture
def topics(broker_url: str) -> Topics:
    tag = uuid.uuid4().hex[:10]
    names = Topics(f"usage-{tag}", f"alerts-{tag}", f"dlq-{tag}", f"tokenradar-{tag}")
    create_topics(broker_url, [names.input], PARTITIONS)
    return names


@pytest.fixture
def start_worker(broker_url: str, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(topics: Topics, config: Path | None = None, **options: Any) -> Worker:
        worker = Worker(broker_url, topics, tmp_path / f"worker-{len(started)}.log", config,
                        **options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
