"""Running the worker: metrics and health endpoints, Faust app, Faust worker without web
server.

``python -m tokenradar.streams.worker --broker ... --input-topic ...`` runs one in this
process (the tests and the benchmark start it so, and stop it by PID with
SIGTERM, which Faust handles as a clean shutdown). ``tokenradar worker`` calls
:func:`run_worker` with the same settings.
"""

from __future__ import annotations

import argparse
import gc
import logging.config
import sys
from typing import Any

import faust
from pydantic import ValidationError

from tokenradar.schemas import DetectorConfig, WorkerSettings
from tokenradar.schemas.settings import settings_problems
from tokenradar.streams.app import create_app
from tokenradar.streams.broker import BrokerUnavailable, wait_for_broker
from tokenradar.streams.health import WorkerHealth
from tokenradar.streams.metrics import WorkerMetrics
from tokenradar.streams.security import SecuritySettingsError, login_hint, tls_context


def run_worker(settings: WorkerSettings, config: DetectorConfig) -> None:
    """Run until SIGTERM/SIGINT; logs "tokenradar worker ready: ..." once consuming.

    A broker that does not answer is asked again with backoff for
    ``settings.broker_wait_seconds`` (a line logged each time: a worker started before
    its broker, or during its restart, then carries on); after that,
    :class:`BrokerUnavailable`, rather than the Kafka clients retrying without end.
    Raises :class:`SecuritySettingsError` at once when the TLS files cannot be used.
    """
    tls_context(settings.kafka_security)  # a bad TLS file is said as such, not as "no broker"
    logging.config.dictConfig(logging_config(colour=sys.stdout.isatty()))
    if not wait_for_broker(settings.broker, settings.broker_wait_seconds,
                           settings.kafka_security):
        raise BrokerUnavailable(
            f"the broker {settings.broker} does not answer Kafka requests (waited "
            f"{settings.broker_wait_seconds:.0f} s): start it, or give the right address with "
            "--broker or TOKENRADAR_BROKER (host:port[,host:port])"
            + login_hint(settings.kafka_security)
        )
    metrics = WorkerMetrics()
    health = WorkerHealth(settings.stall_seconds)
    metrics.follow(health)
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, settings.metrics_host, health)
    app = create_app(settings, config, metrics, health)
    collect_garbage_rarely()
    # loglevel "info" also turns off Faust's terminal spinner; the levels are set below.
    worker = faust.Worker(app, loglevel="info", quiet=True,
                          logging_config=logging_config(colour=sys.stdout.isatty()))
    worker.execute_from_commandline()


GC_THRESHOLDS = (100_000, 10, 10)
"""The cyclic garbage collector's thresholds in the worker (Python's: 700, 10, 10)."""


def collect_garbage_rarely() -> None:
    """Run Python's cyclic garbage collector about 140 times less often, and never over
    what was there at start (modules, Faust's app).

    The worker keeps the decoded states of thousands of users, each many small objects
    the collector walks through at every full collection; its default thresholds had it
    spend about a third of the worker's CPU there (1.5-2 s of 4.5-6 s for 20,000 events
    of 10,000 new users), and with these 0.2-0.4 s. The scoring makes few reference
    cycles (each event's objects go as soon as it is scored): what the collector frees
    either way is a few thousand objects.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


LOG_FORMAT = "[%(asctime)s] [%(process)s] [%(levelname)s] %(name)s: %(message)s"


def logging_config(colour: bool) -> dict[str, Any]:
    """Warnings from Faust and the Kafka clients, tokenradar's own news ("ready") at INFO;
    coloured on a terminal only, so a log file or a log collector gets no escape codes."""
    formatter: dict[str, Any] = {"format": LOG_FORMAT}
    if colour:
        formatter = {"()": "colorlog.ColoredFormatter",
                     "format": LOG_FORMAT.replace("%(message)s", "%(log_color)s%(message)s")}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "stream": "ext://sys.stdout"}},
        "root": {"level": "WARNING", "handlers": ["default"]},
        "loggers": {"tokenradar": {"level": "INFO"}},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tokenradar.streams.worker",
                                     description=__doc__)
    WorkerSettings.add_options(parser)
    args = vars(parser.parse_args(argv))
    try:
        settings = WorkerSettings.from_sources(args)
    except ValidationError as exc:
        sys.exit(f"tokenradar worker: bad worker setting: {settings_problems(exc)}")
    if settings.config is None:
        config = DetectorConfig()
    else:
        from tokenradar.schemas.config_file import ConfigFileError, load_config

        try:
            config = load_config(settings.config)
        except ConfigFileError as exc:
            sys.exit(str(exc))
    try:
        run_worker(settings, config)
    except (BrokerUnavailable, SecuritySettingsError) as exc:
        sys.exit(f"tokenradar worker: {exc}")


if __name__ == "__main__":
    main()
