"""``tokenradar broker``: a Kafka-protocol broker on 127.0.0.1 while it runs, nothing after
SIGTERM or Ctrl-C (the Tansu process stopped by its PID)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from cli_harness import Command

from tokenradar.lab.brokers import free_port
from tokenradar.streams.broker import accepts_connections, broker_answers

pytestmark = pytest.mark.integration


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return [int(child) for child in listing.read().split()]


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("ctrl_c", [False, True], ids=["sigterm", "ctrl-c"])
def test_broker_answers_while_running_and_is_gone_after_sigterm_or_ctrl_c(
        tmp_path: Path, ctrl_c: bool) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    broker = Command(["broker", "--port", str(port), "--log-file", str(tmp_path / "tansu.log")],
                     tmp_path / "broker.log", own_group=ctrl_c)
    tansu = None
    try:
        broker.wait_for(lambda: any("Ctrl-C stops" in line for line in broker.lines))
        assert broker_answers(address)
        assert f"export TOKENRADAR_BROKER={address}" in [line.strip() for line in broker.lines]
        assert "taken" not in broker.lines[0]
        [tansu] = _children(broker.process.pid)
        assert _running(tansu)
    finally:
        code = broker.stop(ctrl_c=ctrl_c)
        if code != 0 and tansu is not None and _running(tansu):
            os.kill(tansu, signal.SIGKILL)  # the command was killed: stop what it started
    assert code == 0, broker.log()
    assert broker.lines[-1] == f"stopped the broker on {address}"
    assert not _running(tansu)
    assert not accepts_connections(address)
