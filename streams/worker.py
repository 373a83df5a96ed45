"""Running the worker: metrics endpoint, Faust app, Faust worker without web server.

``python -m streams.worker --broker ... --input-topic ...`` runs one in this
process (the tests and the benchmark start it so, and stop it by PID with
SIGTERM, which Faust handles as a clean shutdown). ``tokenradar worker`` calls
:func:`run_worker` with the same settings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import faust

from schemas import DetectorConfig, WorkerSettings
from streams.app import create_app
from streams.broker import BrokerUnavailable, broker_answers
from streams.metrics import WorkerMetrics


def run_worker(settings: WorkerSettings, config: DetectorConfig) -> None:
    """Run until SIGTERM/SIGINT; logs "tokenradar worker ready: ..." once consuming.

    Raises :class:`BrokerUnavailable` at once when the broker does not answer, rather
    than letting the Kafka clients retry without end.
    """
    if not broker_answers(settings.broker, timeout_s=10.0):
        raise BrokerUnavailable(
            f"the broker {settings.broker} does not answer Kafka requests: start it, or give "
            "the right address with --broker or TOKENRADAR_BROKER (host:port[,host:port])"
        )
    metrics = WorkerMetrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, settings.metrics_host)
    app = create_app(settings, config, metrics)
    worker = faust.Worker(app, loglevel="warning", quiet=True)
    worker.execute_from_commandline()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m streams.worker", description=__doc__)
    for name in (
        "broker",
        "input-topic",
        "alerts-topic",
        "dlq-topic",
        "group-id",
        "partitions",
        "batch-size",
        "batch-seconds",
        "quiet-flush-seconds",
        "session-timeout-seconds",
        "data-dir",
        "metrics-port",
        "metrics-host",
    ):
        parser.add_argument(f"--{name}")
    parser.add_argument("--config", type=Path, help="detector configuration (TOML)")
    args = vars(parser.parse_args(argv))
    settings = WorkerSettings.from_sources({k: v for k, v in args.items() if v is not None})
    if settings.config is None:
        config = DetectorConfig()
    else:
        from schemas.config_file import ConfigFileError, load_config

        try:
            config = load_config(settings.config)
        except ConfigFileError as exc:
            sys.exit(str(exc))
    try:
        run_worker(settings, config)
    except BrokerUnavailable as exc:
        sys.exit(f"tokenradar worker: {exc}")


if __name__ == "__main__":
    main()
