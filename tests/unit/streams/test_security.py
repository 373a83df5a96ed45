"""Kafka security settings: complete or refused with what to set, secrets never shown,
and mapped to the parameters each client (Faust/aiokafka, kafka-python) takes.

Tansu 0.6.0, the embedded broker, cannot serve TLS (``--cert`` and ``--key`` refuse each
other) nor SASL PLAIN/SCRAM-SHA-256 (``--authentication``: NoSharedMechanism), so these
tests check the mapping, and the TLS context against a real TLS server on 127.0.0.1; the
README gives the manual check against a secured Kafka.
"""

from __future__ import annotations

import inspect
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from pydantic import ValidationError

from tokenradar.schemas import WorkerSettings
from tokenradar.schemas.settings import KafkaSecurity, settings_problems
from tokenradar.streams.security import (
    SecuritySettingsError,
    faust_credentials,
    kafka_python_options,
    tls_context,
)

PASSWORD = "s3cret-Pa55word"
SASL = {"TOKENRADAR_SECURITY_PROTOCOL": "SASL_SSL", "TOKENRADAR_SASL_MECHANISM": "SCRAM-SHA-512",
        "TOKENRADAR_SASL_USERNAME": "tokenradar", "TOKENRADAR_SASL_PASSWORD": PASSWORD}


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all PEM."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{folder}/ca.key",
             "-out", f"{folder}/ca.pem", "-days", "2", "-subj", "/CN=test-ca")
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{folder}/{name}.key",
                 "-out", f"{folder}/{name}.csr", "-subj", f"/CN={name}")
        _openssl("x509", "-req", "-in", f"{folder}/{name}.csr", "-CA", f"{folder}/ca.pem",
                 "-CAkey", f"{folder}/ca.key", "-CAcreateserial", "-out",
                 f"{folder}/{name}.pem", "-days", "2", "-extfile", f"{folder}/san.cnf")
    return folder


def test_sasl_settings_come_from_the_environment_and_map_to_every_client() -> None:
    security = WorkerSettings.from_sources({}, environ=SASL).kafka_security
    options = kafka_python_options(security)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "tokenradar", PASSWORD)
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    aiokafka = credentials_to_aiokafka_auth(faust_credentials(security))
    assert aiokafka["security_protocol"] == "SASL_SSL"
    assert aiokafka["sasl_mechanism"] == "SCRAM-SHA-512"
    assert aiokafka["sasl_plain_password"] == PASSWORD
    assert isinstance(aiokafka["ssl_context"], ssl.SSLContext)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_without_tls_has_no_tls_context(mechanism: str) -> None:
    security = KafkaSecurity(security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                             sasl_username="u", sasl_password=PASSWORD)  # type: ignore[arg-type]
    assert "ssl_context" not in kafka_python_options(security)
    aiokafka = credentials_to_aiokafka_auth(faust_credentials(security))
    assert aiokafka["security_protocol"] == "SASL_PLAINTEXT"
    assert aiokafka["sasl_mechanism"] == mechanism
    assert aiokafka["ssl_context"] is None


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    security = KafkaSecurity()
    assert kafka_python_options(security) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(security) is None


def test_tls_alone_maps_to_faust_ssl_credentials(pki: Path) -> None:
    security = KafkaSecurity(security_protocol="SSL", ssl_cafile=pki / "ca.pem")
    aiokafka = credentials_to_aiokafka_auth(faust_credentials(security))
    assert aiokafka["security_protocol"] == "SSL"
    assert aiokafka["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert "sasl_mechanism" not in kafka_python_options(security)


@pytest.mark.parametrize("client", [KafkaAdminClient, KafkaConsumer, KafkaProducer])
def test_kafka_python_clients_know_every_parameter(client: type) -> None:
    security = WorkerSettings.from_sources({}, environ=SASL).kafka_security
    assert set(kafka_python_options(security)) <= set(client.DEFAULT_CONFIG)  # type: ignore[attr-defined]


@pytest.mark.parametrize("client", [AIOKafkaConsumer, AIOKafkaProducer])
def test_aiokafka_clients_know_every_parameter(client: type) -> None:
    security = WorkerSettings.from_sources({}, environ=SASL).kafka_security
    parameters = inspect.signature(client).parameters
    assert set(credentials_to_aiokafka_auth(faust_credentials(security))) <= set(parameters)


def test_password_is_read_from_a_file_given_by_option_or_environment(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    environ = {**SASL, "TOKENRADAR_SASL_PASSWORD": ""}
    by_option = KafkaSecurity.from_sources({"sasl_password_file": str(secret)}, environ)
    by_variable = KafkaSecurity.from_sources(
        {}, {**environ, "TOKENRADAR_SASL_PASSWORD_FILE": str(secret)})
    for security in (by_option, by_variable):
        assert security.sasl_password is not None
        assert security.sasl_password.get_secret_value() == PASSWORD


def test_secrets_are_never_shown(tmp_path: Path) -> None:
    settings = WorkerSettings.from_sources(
        {}, environ={**SASL, "TOKENRADAR_PSEUDONYM_KEY": "k" * 32})
    for text in (repr(settings), str(settings), repr(settings.kafka_security),
                 settings.model_dump_json(), repr(faust_credentials(settings.kafka_security))):
        assert PASSWORD not in text
        assert "k" * 32 not in text
    with pytest.raises(ValidationError) as error:  # an error echoes none of the input
        WorkerSettings.from_sources({}, environ={**SASL, "TOKENRADAR_SASL_MECHANISM": "MD5"})
    assert PASSWORD not in str(error.value)
    assert PASSWORD not in settings_problems(error.value)


def test_an_unreadable_or_empty_password_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="nowhere/password: cannot read it"):
        KafkaSecurity.from_sources({"sasl_password_file": str(tmp_path / "nowhere/password")},
                                   {})
    (tmp_path / "empty").write_text("")
    with pytest.raises(ValidationError, match="the file is empty"):
        KafkaSecurity.from_sources({"sasl_password_file": str(tmp_path / "empty")}, {})


@pytest.mark.parametrize(("environ", "says"), [
    ({"TOKENRADAR_SECURITY_PROTOCOL": "SASL_SSL", "TOKENRADAR_SASL_MECHANISM": "PLAIN"},
     "needs TOKENRADAR_SASL_USERNAME, TOKENRADAR_SASL_PASSWORD"),
    ({"TOKENRADAR_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "TOKENRADAR_SASL_USERNAME": "u",
      "TOKENRADAR_SASL_PASSWORD": "p"}, "needs TOKENRADAR_SASL_MECHANISM"),
    ({"TOKENRADAR_SASL_MECHANISM": "PLAIN"}, "set TOKENRADAR_SECURITY_PROTOCOL to SASL_SSL"),
    ({"TOKENRADAR_SSL_CAFILE": __file__}, "set TOKENRADAR_SECURITY_PROTOCOL to SSL"),
    ({"TOKENRADAR_SECURITY_PROTOCOL": "SSL", "TOKENRADAR_SSL_KEYFILE": __file__},
     "needs its certificate"),
    ({"TOKENRADAR_SECURITY_PROTOCOL": "SSL", "TOKENRADAR_SSL_CAFILE": "/no/such/ca.pem"},
     "ssl_cafile: Path does not point to a file"),
    ({"TOKENRADAR_SECURITY_PROTOCOL": "TLS"}, "security_protocol: Input should be"),
])
def test_incomplete_settings_say_what_to_set(environ: dict[str, str], says: str) -> None:
    with pytest.raises(ValidationError) as error:
        WorkerSettings.from_sources({}, environ=environ)
    assert says in settings_problems(error.value)


def test_a_tls_file_that_is_not_pem_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(SecuritySettingsError, match="ca.pem"):
        tls_context(KafkaSecurity(security_protocol="SSL", ssl_cafile=bad))


def _serve_tls_once(context: ssl.SSLContext) -> tuple[int, threading.Thread, list[str]]:
    """A TLS server on 127.0.0.1 that takes one connection; what happened in the list."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    outcome: list[str] = []

    def serve() -> None:
        with listener:
            connection, _ = listener.accept()
            try:
                with context.wrap_socket(connection, server_side=True) as tls:
                    peer = tls.getpeercert()
                    outcome.append(dict(x[0] for x in peer["subject"])["commonName"]
                                   if peer else "no client certificate")
            except (ssl.SSLError, OSError) as exc:
                outcome.append(f"refused: {exc.__class__.__name__}")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread, outcome


def _mutual_tls_server(pki: Path) -> ssl.SSLContext:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.pem"))
    server.load_cert_chain(str(pki / "server.pem"), str(pki / "server.key"))
    server.verify_mode = ssl.CERT_REQUIRED
    return server


def test_mutual_tls_context_verifies_the_broker_and_presents_the_client_certificate(
        pki: Path) -> None:
    port, thread, outcome = _serve_tls_once(_mutual_tls_server(pki))
    security = KafkaSecurity(security_protocol="SSL", ssl_cafile=pki / "ca.pem",
                             ssl_certfile=pki / "client.pem", ssl_keyfile=pki / "client.key")
    context = tls_context(security)
    assert context is not None
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.version() is not None
    thread.join(5)
    assert outcome == ["client"]


def test_tls_context_refuses_a_broker_its_ca_did_not_sign(pki: Path, tmp_path: Path) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{tmp_path}/o.key",
             "-out", f"{tmp_path}/other-ca.pem", "-days", "2", "-subj", "/CN=other")
    port, thread, _ = _serve_tls_once(_mutual_tls_server(pki))
    context = tls_context(KafkaSecurity(security_protocol="SSL",
                                        ssl_cafile=tmp_path / "other-ca.pem"))
    assert context is not None
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            pytest.raises(ssl.SSLCertVerificationError):
        context.wrap_socket(raw, server_hostname="127.0.0.1")
    thread.join(5)


@pytest.mark.parametrize("command", [["alerts", "tail"], ["worker"],
                                     ["simulate", "--topic", "t", "--broker", "h:1"]])
def test_commands_stop_on_incomplete_security_naming_what_is_missing_not_the_secret(
        command: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from tokenradar.cli import main

    monkeypatch.setenv("TOKENRADAR_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TOKENRADAR_SASL_PASSWORD", PASSWORD)
    assert main(command) == 2
    error = capsys.readouterr().err
    assert "security_protocol SASL_SSL needs TOKENRADAR_SASL_MECHANISM" in error
    assert PASSWORD not in error
