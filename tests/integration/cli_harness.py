"""The ``tokenradar`` command as a subprocess (stdout read line by line, stderr to a log,
stopped by its PID), alerts produced as the worker would, and a local HTTP receiver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from tokenradar.schemas import AnomalyEvent
from tokenradar.schemas.settings import bootstrap_of


def _sigint_as_in_a_terminal() -> None:
    """Ctrl-C reaches a terminal's foreground job, whose SIGINT does its default; a test
    run started as a shell's background job (``cmd &``) inherits SIGINT ignored, and so
    would every command it starts (CI run so: the Ctrl-C test's broker never stopped)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Command:
    """``python -m tokenradar <args>``; its stdout lines collected as they come."""

    def __init__(self, args: list[str], log_path: Path, own_group: bool = False) -> None:
        self.log_path = log_path
        self.lines: list[str] = []
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tokenradar", *args], stdout=subprocess.PIPE,
                stderr=log, stdin=subprocess.DEVNULL, text=True, env=env,
                start_new_session=own_group,
                preexec_fn=_sigint_as_in_a_terminal if own_group else None)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, condition: Callable[[], bool], timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached within {timeout_s} s; stdout: "
                                     f"{self.lines}; stderr:\n{self.log()[-4000:]}")
            if self.process.poll() is not None:
                raise AssertionError(f"exited with {self.process.returncode}; stdout: "
                                     f"{self.lines}; stderr:\n{self.log()[-4000:]}")
            time.sleep(0.1)

    def stop(self, ctrl_c: bool = False) -> int:
        """SIGTERM by PID (or, with ``own_group``, SIGINT to its process group, as Ctrl-C
        in a terminal); kill if it lingers. Returns the exit code."""
        if self.process.poll() is None:
            if ctrl_c:
                os.killpg(self.process.pid, signal.SIGINT)
            else:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        return self.process.returncode


def make_alert(alert_id: str, severity: str = "medium", kind: str = "spike",
               user: str = "ana", team: str | None = "core", **fields: Any) -> AnomalyEvent:
    at = datetime(2026, 11, 20, 19, tzinfo=UTC)
    values: dict[str, Any] = dict(
        alert_id=alert_id, user_id=user, team=team, kind=kind, detector=kind,
        score={"low": 0.65, "medium": 0.75, "high": 0.9, "critical": 0.97}[severity],
        severity=severity, event_time=at, detected_at=at, feature="tokens_per_hour",
        observed=90000.0, expected=4000.0, event_ids=[f"req-{alert_id}"],
        explanation=f"Alert {alert_id}: usage far above this user's usual.",
        config_version="c76e75fbd2db")
    values.update(fields)
    return AnomalyEvent(**values)


def produce_alerts(broker_url: str, topic: str, messages: list[bytes]) -> None:
    """Each message in its own batch, in order (on a one-partition topic)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap_of(broker_url))
    try:
        for message in messages:
            producer.send(topic, value=message)
            producer.flush()
    finally:
        producer.close()


def alert_message(alert: AnomalyEvent) -> bytes:
    return alert.model_dump_json().encode()


class Receiver:
    """An HTTP server on 127.0.0.1 that records JSON POSTs; the first ``fail_first``
    answer 500, and each answer waits ``delay_s``."""

    def __init__(self, port: int = 0, fail_first: int = 0, delay_s: float = 0.0) -> None:
        self.received: list[tuple[str, Any]] = []
        self.failed = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(delay_s)
                if receiver.failed < fail_first:
                    receiver.failed += 1
                    self.send_response(500)
                else:
                    receiver.received.append((self.path, body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def bodies(self, path: str) -> list[Any]:
        return [body for at, body in list(self.received) if at == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
