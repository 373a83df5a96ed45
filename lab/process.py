"""A worker in a subprocess: started with its settings, watched through its metrics,
stopped by its PID. Used by the demo, the benchmark and the integration tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import urlopen

from prometheus_client.parser import text_string_to_metric_families

from tokenradar.lab.brokers import free_port
from tokenradar.streams.metrics import OUTCOMES


class WorkerProcess:
    """``python -m tokenradar.streams.worker`` with the given options; metrics on a free local port.

    Parameters
    ----------
    options
        ``tokenradar.streams.worker`` options without the leading dashes, e.g. ``{"broker": url}``.
    log_path
        Where the worker's output goes.
    """

    def __init__(self, options: dict[str, str], log_path: Path) -> None:
        self.metrics_port = free_port()
        self.log_path = log_path
        command = [sys.executable, "-m", "tokenradar.streams.worker",
                   "--metrics-port", str(self.metrics_port)]
        for name, value in options.items():
            command += [f"--{name}", value]
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Current samples, keyed by (name, sorted labels); empty if not up yet."""
        try:
            text = urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).read()
        except (URLError, OSError):
            return {}
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text.decode())
            for sample in family.samples
        }

    def probe(self, path: str) -> tuple[int, str]:
        """``GET path`` on the metrics port: (HTTP status, body); (0, reason) if no answer."""
        try:
            with urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=2) as answer:
                return answer.status, answer.read().decode()
        except HTTPError as error:
            return error.code, error.read().decode()
        except (URLError, OSError) as error:
            return 0, str(error)

    def events(self, outcome: str) -> float:
        return self.metrics().get(("tokenradar_events_total", (("outcome", outcome),)), 0.0)

    def outcomes(self) -> dict[str, float]:
        """Input messages by what became of them: scored, duplicate, rekeyed, dead-lettered."""
        samples = self.metrics()
        return {o: samples.get(("tokenradar_events_total", (("outcome", o),)), 0.0)
                for o in OUTCOMES}

    def wait_for_events(self, outcome: str, count: int, timeout_s: float = 60) -> None:
        wait_until(lambda: self.events(outcome) >= count, timeout_s, self.describe)

    def scored(self) -> float:
        """Events scored: in order, or late (after later events of their routing key)."""
        return self.events("scored") + self.events("late")

    def held(self) -> float:
        """Events waiting in reorder buffers, not yet scored."""
        return self.metrics().get(("tokenradar_held_events", ()), 0.0)

    def wait_for_scored(self, count: int, timeout_s: float = 60) -> None:
        wait_until(lambda: self.scored() >= count, timeout_s, self.describe)

    def describe(self) -> str:
        """Counts, and the log with every task's stack (SIGUSR1 makes Faust's worker
        print them), so a stuck worker shows where it waits."""
        counts = self.outcomes()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(1)
        log_tail = self.log_path.read_text(errors="replace")[-12000:]
        return f"worker counts {counts}; log tail:\n{log_tail}"

    def stop(self) -> None:
        """SIGTERM this worker by PID (Faust shuts down cleanly); kill it if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_until(condition: Callable[[], bool], timeout_s: float,
               describe: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_s} s: {describe()}")
        time.sleep(0.2)
