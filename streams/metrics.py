"""The worker's Prometheus metrics, in one object over an explicit registry, and the
HTTP server for them and the health probes.

Labels are bounded sets (outcomes, kinds, severities, error types): never a user
id, whose cardinality would grow without limit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any, get_args
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    make_wsgi_app,
)

from tokenradar.detectors.verdicts import CALENDAR, VERDICT
from tokenradar.schemas import Severity, anomaly_kinds
from tokenradar.schemas.feedback import VerdictValue
from tokenradar.streams.health import Verdict, WorkerHealth

OUTCOMES = ("scored", "late", "duplicate", "rekeyed", "dead_lettered")
"""Every input message ends in exactly one of these (``late``: scored after later events
of its routing key, beyond the reorder window); their sum is the messages read, less
those its routing key's reorder buffer still holds (``tokenradar_held_events``)."""


class WorkerMetrics:
    """What a tokenradar worker counts and times.

    Parameters
    ----------
    registry
        Where the metrics are registered; tests pass a fresh ``CollectorRegistry``.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        self.events = Counter(
            "tokenradar_events",
            "Input messages by what became of them.",
            ["outcome"],
            registry=self.registry,
        )
        self.alerts = Counter(
            "tokenradar_alerts",
            "Incidents alerted: alerts published with a new alert_id.",
            ["kind", "severity"],
            registry=self.registry,
        )
        self.escalations = Counter(
            "tokenradar_alert_escalations",
            "Alerts re-published for an open incident that got more severe (same alert_id).",
            ["kind", "severity"],
            registry=self.registry,
        )
        self.verdicts = Counter(
            "tokenradar_verdicts",
            "Verdicts on alerts filed in state (new, or replacing one on the same alert).",
            ["verdict"],
            registry=self.registry,
        )
        self.silenced = Counter(
            "tokenradar_silenced_alerts",
            "Alerts not raised: silenced by a verdict or a calendar window.",
            ["kind", "reason"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "tokenradar_dead_letters",
            "Messages sent to the dead-letter topic.",
            ["error_type"],
            registry=self.registry,
        )
        self.unpriced_models = Counter(
            "tokenradar_unpriced_models",
            "Models priced at the price table's default, each counted once per worker "
            "(the log names them).",
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "tokenradar_batch_seconds",
            "Time to process one batch, publishing included.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.batch_events = Histogram(
            "tokenradar_batch_events",
            "Messages per batch taken from the stream.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
            registry=self.registry,
        )
        self.state_bytes = Histogram(
            "tokenradar_state_bytes",
            "Size of one user's encoded state when stored.",
            buckets=(64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384),
            registry=self.registry,
        )
        self.users_held = Gauge(
            "tokenradar_users_held",
            "Users whose state this worker holds (its partitions' share of the table).",
            registry=self.registry,
        )
        self.users_expired = Counter(
            "tokenradar_users_expired",
            "Users' states removed after state_expiry_days without an event of theirs: "
            "deleted by a sweep, or replaced at the user's next event.",
            registry=self.registry,
        )
        self.held_events = Gauge(
            "tokenradar_held_events",
            "Events waiting in reorder buffers of this worker's routing keys.",
            registry=self.registry,
        )
        self.last_event_seconds = Gauge(
            "tokenradar_last_event_processed_timestamp_seconds",
            "Wall-clock time the last batch finished; shows a stalled worker.",
            registry=self.registry,
        )
        self.stalled = Gauge(
            "tokenradar_stalled",
            "1 when events wait on assigned partitions and none was processed for "
            "stall_seconds (or the event loop stopped); else 0.",
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "tokenradar_consumer_lag",
            "Events waiting on this worker's assigned input and re-key partitions (high "
            "watermark minus next offset to process), at the last sample.",
            registry=self.registry,
        )
        self.assigned_partitions = Gauge(
            "tokenradar_assigned_partitions",
            "Input partitions assigned to this worker.",
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, CPU, fds
        for outcome in OUTCOMES:  # export zeros, so "nothing dead-lettered" is visible
            self.events.labels(outcome)
        for kind in anomaly_kinds():  # and so both alert counters can be added up in PromQL
            for severity in get_args(Severity):
                self.alerts.labels(kind, severity)
                self.escalations.labels(kind, severity)
            for reason in (VERDICT, CALENDAR):
                self.silenced.labels(kind, reason)
        for verdict in get_args(VerdictValue):
            self.verdicts.labels(verdict)

    def follow(self, health: WorkerHealth) -> None:
        """Read the stall gauges from ``health`` at each scrape, so they stay true even
        when the event loop is blocked."""
        self.stalled.set_function(lambda: float(health.stalled()))
        self.consumer_lag.set_function(lambda: health.consumer_lag)
        self.assigned_partitions.set_function(lambda: health.assigned_partitions)

    def serve(
        self, port: int, host: str = "127.0.0.1", health: WorkerHealth | None = None
    ) -> WSGIServer:
        """Serve ``/metrics`` and, given ``health``, ``/healthz`` (liveness) and ``/readyz``
        (readiness) on ``host`` (loopback unless told otherwise), from a daemon thread;
        ``shutdown()`` on the returned server stops it."""
        server = make_server(
            host, port, http_app(self.registry, health), _ThreadingServer, _QuietHandler
        )
        threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
        return server


Respond = Callable[[str, list[tuple[str, str]]], Any]


def http_app(registry: CollectorRegistry, health: WorkerHealth | None) -> Callable[..., Any]:
    """A WSGI app: ``/metrics``; ``/healthz`` and ``/readyz`` answer 200 or 503 with the
    reason as plain text; any other path is 404 (a probe on a typo'd path must fail)."""
    metrics = make_wsgi_app(registry)
    probes: dict[str, Callable[[], Verdict]] = {}
    if health is not None:
        probes = {"/healthz": health.liveness, "/readyz": health.readiness}

    def app(environ: dict[str, Any], respond: Respond) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics(environ, respond)  # type: ignore[no-any-return]
        if path in probes:
            verdict = probes[path]()
            status = "200 OK" if verdict.ok else "503 Service Unavailable"
            return _text(respond, status, verdict.reason)
        return _text(respond, "404 Not Found", f"no {path}: try /metrics, /healthz, /readyz")

    return app


def _text(respond: Respond, status: str, body: str) -> list[bytes]:
    data = (body + "\n").encode()
    respond(status, [("Content-Type", "text/plain; charset=utf-8"),
                     ("Content-Length", str(len(data)))])
    return [data]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scrape never holds up the worker's exit


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes come every few seconds: logging each would drown the worker's log."""
