"""deploy/Dockerfile: two stages on a pinned base, a non-root user, and a HEALTHCHECK
whose command really tells a live worker from one whose agent crashed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tokenradar.lab.brokers import free_port
from tokenradar.streams.health import WorkerHealth
from tokenradar.streams.metrics import WorkerMetrics

DOCKERFILE = Path(__file__).parents[3] / "deploy" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in lines if line and not line.startswith("#")]


def test_two_stages_on_an_exactly_pinned_base() -> None:
    args = dict(a.split("=", 1) for i, a in instructions() if i == "ARG" and "=" in a)
    stages = [a.split()[0] for i, a in instructions() if i == "FROM"]
    assert len(stages) >= 2
    bases = {args.get(s.strip("${}"), s) for s in stages}
    for base in bases:  # python:3.11.14-slim-bookworm, or a digest
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base) or "@sha256:" in base, base


def test_runs_as_a_non_root_user() -> None:
    users = [a for i, a in instructions() if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def healthcheck_command() -> list[str]:
    (arguments,) = [a for i, a in instructions() if i == "HEALTHCHECK"]
    return list(json.loads(arguments[arguments.index("CMD") + 3:].strip()))


@pytest.mark.parametrize("crashed", [False, True])
def test_healthcheck_command_follows_healthz(crashed: bool) -> None:
    command = healthcheck_command()
    assert command[0] == "python" and "curl" not in " ".join(command)
    health = WorkerHealth(stall_seconds=60)
    if crashed:
        health.agent_crashed(RuntimeError("boom"))
    port = free_port()
    server = WorkerMetrics(CollectorRegistry()).serve(port, "127.0.0.1", health)
    try:
        env = {**os.environ, "TOKENRADAR_METRICS_PORT": str(port)}
        result = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True,
                                timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert (result.returncode == 0) is not crashed, result.stderr
