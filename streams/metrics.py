"""The worker's Prometheus metrics, in one object over an explicit registry.

Labels are bounded sets (outcomes, kinds, severities, error types): never a user
id, whose cardinality would grow without limit.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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
            "Alerts published.",
            ["kind", "severity"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "tokenradar_dead_letters",
            "Messages sent to the dead-letter topic.",
            ["error_type"],
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
        for outcome in OUTCOMES:  # export zeros, so "nothing dead-lettered" is visible
            self.events.labels(outcome)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose ``/metrics`` on ``host`` (loopback unless told otherwise)."""
        start_http_server(port, addr=host, registry=self.registry)
