""":class:`~tokenradar.schemas.settings.KafkaSecurity` as each Kafka client takes it.

One TLS context is built from the settings' files and handed to Faust (aiokafka) and
kafka-python alike, so the worker and every command verify brokers, and present a
client certificate, the same way. The password is read out of its ``SecretStr`` only
here, into the clients' parameters: never into a log line or an error.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from tokenradar.schemas.settings import KafkaSecurity

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT


class SecuritySettingsError(Exception):
    """A TLS file that cannot be used; the message names it and says why."""


def tls_context(security: KafkaSecurity) -> ssl.SSLContext | None:
    """The TLS context of an ``SSL``/``SASL_SSL`` connection, else None."""
    if security.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    try:
        context = ssl.create_default_context(
            cafile=str(security.ssl_cafile) if security.ssl_cafile else None)
        if security.ssl_certfile is not None:
            password = security.ssl_key_password
            context.load_cert_chain(
                str(security.ssl_certfile),
                str(security.ssl_keyfile) if security.ssl_keyfile else None,
                password.get_secret_value() if password else None)
    except (ssl.SSLError, OSError) as exc:
        files = ", ".join(str(path) for path in (security.ssl_cafile, security.ssl_certfile,
                                                 security.ssl_keyfile) if path)
        raise SecuritySettingsError(
            f"cannot use the TLS files ({files or 'system CAs'}): {exc.__class__.__name__}: "
            f"{getattr(exc, 'reason', None) or exc.strerror or 'unreadable'}; check that they "
            "are PEM, that the key matches the certificate, and its password") from None
    context.check_hostname = security.ssl_check_hostname
    return context


def login_hint(security: KafkaSecurity) -> str:
    """What to add to "the broker does not answer" when a login or handshake may be why."""
    if security.security_protocol == "PLAINTEXT":
        return ""
    return (f"; with security_protocol {security.security_protocol}, a refused login or TLS "
            "handshake looks the same: check the SASL user and password, the CA and "
            "certificate files, and that the port is the broker's "
            f"{security.security_protocol} listener")


def kafka_python_options(security: KafkaSecurity) -> dict[str, Any]:
    """Keyword arguments for kafka-python's admin client, consumer and producer."""
    options: dict[str, Any] = {"security_protocol": security.security_protocol}
    context = tls_context(security)
    if context is not None:
        options["ssl_context"] = context
        options["ssl_check_hostname"] = security.ssl_check_hostname
    if security.sasl_mechanism is not None:
        assert security.sasl_password is not None, "KafkaSecurity requires it with SASL"
        options["sasl_mechanism"] = security.sasl_mechanism
        options["sasl_plain_username"] = security.sasl_username
        options["sasl_plain_password"] = security.sasl_password.get_secret_value()
    return options


def faust_credentials(security: KafkaSecurity) -> CredentialsT | None:
    """Faust's ``broker_credentials``: SASL (over TLS or not), TLS alone, or None."""
    import faust  # here: the commands that only read alerts need not load Faust

    context = tls_context(security)
    if security.sasl_mechanism is not None:
        assert security.sasl_password is not None, "KafkaSecurity requires it with SASL"
        return faust.SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password.get_secret_value(),
            mechanism=security.sasl_mechanism,
            ssl_context=context)
    if context is not None:
        return faust.SSLCredentials(context)
    return None
