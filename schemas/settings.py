"""Worker settings: where the broker is, how to reach it securely, which topics, which
group; one frozen object.

Every option comes from the command line or the environment (``TOKENRADAR_*``), is
validated once at start, and is never created at import time. A secret (a password, the
pseudonym key) is never an option: it comes from ``TOKENRADAR_<NAME>`` or from a file
named by ``--<name>-file`` or ``TOKENRADAR_<NAME>_FILE``, and is held as a
:class:`~pydantic.SecretStr`, so no repr, log line or error shows it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from tokenradar.schemas.events import InputLimits
from tokenradar.schemas.pseudonyms import Pseudonymiser

ENV_PREFIX = "TOKENRADAR_"
FILE_SUFFIX = "_file"
"""``<secret>_file``: the option or variable naming a file that holds the secret."""

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def bootstrap_of(url: str) -> list[str]:
    """``kafka://h:p,h2:p2`` or ``h:p`` -> ``["h:p", "h2:p2"]``, as Kafka clients take it."""
    return [host.strip() for host in url.strip().removeprefix("kafka://").split(",")]


class CommandSettings(BaseModel):
    """Settings a command reads from its options and ``TOKENRADAR_*`` variables."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    """Errors never echo what was given: it may hold a secret."""

    @classmethod
    def secret_fields(cls) -> list[str]:
        return [name for name, field in cls.model_fields.items()
                if field.annotation is not None and SecretStr in _members(field.annotation)]

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser) -> None:
        """One ``--option`` per setting, with its description, variable and default (a
        secret gets ``--<name>-file`` instead). Nothing is parsed into a default, so
        ``$TOKENRADAR_*`` still wins over it."""
        secrets = cls.secret_fields()
        for name, field in cls.model_fields.items():
            variable = ENV_PREFIX + name.upper()
            if name in secrets:
                parser.add_argument(
                    "--" + (name + FILE_SUFFIX).replace("_", "-"), default=argparse.SUPPRESS,
                    metavar="FILE", help=f"{field.description} Read from this file; also "
                    f"${variable}_FILE, or the secret itself in ${variable} (default: none)")
                continue
            default = "none" if field.default is None else field.default
            parser.add_argument(
                "--" + name.replace("_", "-"), default=argparse.SUPPRESS,
                help=f"{field.description} Also ${variable} (default: {default})")

    @classmethod
    def from_sources(cls, options: Mapping[str, Any], environ: Mapping[str, str] | None = None
                     ) -> Any:
        """Options win over ``TOKENRADAR_<NAME>`` variables, which win over defaults; a
        secret's file (option, else variable) wins over the secret in a variable."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        secrets = cls.secret_fields()
        for name in cls.model_fields:
            names = [name, name + FILE_SUFFIX] if name in secrets else [name]
            for key in names:
                env_value = environ.get(ENV_PREFIX + key.upper())
                if env_value:
                    values[key] = env_value
                if options.get(key) is not None:
                    values[key] = options[key]
        return cls.model_validate(values)

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        """``<secret>_file`` -> the file's text (one trailing newline dropped)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name in cls.secret_fields():
            path = data.pop(name + FILE_SUFFIX, None)
            if path is None:
                continue
            try:
                text = Path(path).read_text(encoding="utf-8").removesuffix("\n")
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or type(exc).__name__
                raise ValueError(f"{name}{FILE_SUFFIX} {path}: cannot read it ({reason}); "
                                 "give a readable file holding the secret") from None
            if not text:
                raise ValueError(f"{name}{FILE_SUFFIX} {path}: the file is empty")
            data[name] = text
        return data


def settings_problems(error: ValidationError) -> str:
    """A settings error in one line, each problem with its setting; never the values given."""
    problems = []
    for problem in error.errors(include_input=False):
        where = ".".join(map(str, problem["loc"]))
        message = problem["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def _members(annotation: Any) -> tuple[Any, ...]:
    return getattr(annotation, "__args__", None) or (annotation,)


class KafkaSecurity(CommandSettings):
    """How to reach a secured Kafka: TLS (one-way or mutual) and SASL (PLAIN, SCRAM).

    Shared by the worker and every command that talks to Kafka; ``streams/security.py``
    turns it into each client's parameters.
    """

    security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.")
    sasl_mechanism: SaslMechanism | None = Field(
        None, description="With SASL_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.")
    sasl_username: str | None = Field(None, description="With SASL_*: the user name.")
    sasl_password: SecretStr | None = Field(None, description="With SASL_*: the password.")
    ssl_cafile: FilePath | None = Field(
        None, description="With SSL/SASL_SSL: CA bundle (PEM) to verify the brokers; none: "
        "the system's CAs.")
    ssl_certfile: FilePath | None = Field(
        None, description="With SSL/SASL_SSL: client certificate (PEM) for mutual TLS.")
    ssl_keyfile: FilePath | None = Field(
        None, description="With --ssl-certfile: its private key (PEM), unless in the "
        "certificate file.")
    ssl_key_password: SecretStr | None = Field(
        None, description="The password of an encrypted --ssl-keyfile.")
    ssl_check_hostname: bool = Field(
        True, description="With SSL/SASL_SSL: check that a broker's certificate names it.")

    @model_validator(mode="after")
    def _complete(self) -> KafkaSecurity:
        """An incomplete or contradictory combination is an error, saying what to set."""
        sasl = self.security_protocol.startswith("SASL_")
        tls = self.security_protocol in ("SSL", "SASL_SSL")
        given_sasl = [name for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                      if getattr(self, name) is not None]
        if sasl:
            missing = [name for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                       if name not in given_sasl]
            if missing:
                raise ValueError(
                    f"security_protocol {self.security_protocol} needs "
                    + ", ".join(_variable(name) for name in missing)
                    + " (the mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; the password "
                    f"may come from a file: {ENV_PREFIX}SASL_PASSWORD_FILE)")
        elif given_sasl:
            raise ValueError(
                f"{', '.join(_variable(name) for name in given_sasl)} given but "
                f"security_protocol is {self.security_protocol}: set "
                f"{ENV_PREFIX}SECURITY_PROTOCOL to SASL_SSL (or SASL_PLAINTEXT)")
        given_tls = [name for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile",
                                       "ssl_key_password") if getattr(self, name) is not None]
        if given_tls and not tls:
            raise ValueError(
                f"{', '.join(_variable(name) for name in given_tls)} given but "
                f"security_protocol is {self.security_protocol}: set "
                f"{ENV_PREFIX}SECURITY_PROTOCOL to SSL (or SASL_SSL)")
        if self.ssl_certfile is None and (self.ssl_keyfile or self.ssl_key_password):
            raise ValueError(f"a client key needs its certificate: set {ENV_PREFIX}SSL_CERTFILE")
        return self

    @property
    def kafka_security(self) -> KafkaSecurity:
        """These settings alone (from a :class:`WorkerSettings`, too)."""
        return KafkaSecurity.model_validate(
            {name: getattr(self, name) for name in KafkaSecurity.model_fields})


def _variable(name: str) -> str:
    return ENV_PREFIX + name.upper()


class Pseudonymisation(CommandSettings):
    """The key that replaces user ids by pseudonyms; the worker and ``replay`` share it."""

    pseudonym_key: SecretStr | None = Field(
        None, description="Key of the HMAC that replaces every user_id by a pseudonym at "
        "ingestion (at least 16 characters); none: user ids are kept.")

    @field_validator("pseudonym_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("the pseudonym key must have at least 16 characters (use e.g. "
                             "`openssl rand -hex 32`)")
        return value

    def pseudonymiser(self) -> Pseudonymiser | None:
        """What replaces user ids at ingestion, when a key is set."""
        if self.pseudonym_key is None:
            return None
        return Pseudonymiser(self.pseudonym_key.get_secret_value().encode())


class Retention(CommandSettings):
    """How long a person's state outlives their last event; the worker and ``replay``
    must be given the same, like the pseudonym key (see ``detectors/retention.py``)."""

    state_expiry_days: Annotated[float, Field(ge=0)] = Field(
        90.0, description="Days of event time without an event after which a user's state "
        "is deleted and the user, if they come back, starts afresh; 0: kept for ever.")


class InputLimitSettings(CommandSettings):
    """What is accepted as an event (:class:`InputLimits`, whose fields these are); the
    worker and ``replay`` must be given the same, like the pseudonym key."""

    # InputLimits' own fields, constraints and descriptions included: declared once.
    max_event_bytes: int = InputLimits.model_fields["max_event_bytes"]  # type: ignore[assignment]
    max_ahead_seconds: float = InputLimits.model_fields["max_ahead_seconds"]  # type: ignore[assignment]

    @property
    def input_limits(self) -> InputLimits:
        return InputLimits(max_event_bytes=self.max_event_bytes,
                           max_ahead_seconds=self.max_ahead_seconds)


LIVE_STATES = 6_656
"""Users' states kept decoded by ``replay`` (``HeldStates``) and, unless told otherwise
(``decoded_users``), the worker, the most recently scored: about 13 KB each as Python
objects, against 2.5-2.8 as stored bytes (``bench/state_size.py --breakdown``). At
100,000 users held they are about 1 KB a user of the 4 KB
(``bench/bench_user_memory.py``; 10,240 made it 4.3 KB). An organisation of up to
6,656 active people and its teams stays decoded whole; beyond that, a user scored
after 6,656 others costs a decode (and an encode of the one put away): ~60-90 us more
CPU on a ~100 us event, twice the CPU of 10,000 users scored in turn."""


class _WorkerOptions(CommandSettings):
    """The worker's own settings; :class:`WorkerSettings` adds security and privacy."""

    broker: str = Field(
        "kafka://127.0.0.1:9092",
        description="Kafka bootstrap servers: kafka://host:port[,host:port] or host:port.",
    )
    config: Path | None = Field(None, description="Detector configuration file (TOML).")
    input_topic: str = Field("token-usage", description="Token-usage events are read here.")
    alerts_topic: str = Field("token-anomalies", description="Anomalies are published here.")
    dlq_topic: str = Field("token-usage.dlq",
                           description="Messages that cannot be scored go here, with a reason.")
    feedback_topic: str = Field(
        "token-anomalies.feedback",
        description="People's verdicts on alerts are read here (tokenradar feedback).")
    group_id: str = Field("tokenradar", description="Consumer group: workers sharing it share "
                          "the partitions.")
    partitions: Annotated[int, Field(ge=1)] = Field(
        4, description="Partitions of the topics tokenradar creates when they do not exist."
    )
    batch_size: Annotated[int, Field(ge=1)] = Field(
        1000, description="Most events scored in one step: a fetch is scored in batches "
        "of at most this many."
    )
    batch_seconds: Annotated[float, Field(gt=0)] = Field(
        0.02, description="About how long one batch is scored before its alerts are sent: "
        "a fetch is scored in batches of this much work at the recent cost per event (at "
        "most batch_size), so a large fetch does not hold back its first alerts."
    )
    quiet_flush_seconds: Annotated[float, Field(gt=0)] = Field(
        10.0, description="Seconds without a new event after which a routing key's held "
        "events (see scoring.reorder_seconds) are scored, in order; seconds in which the "
        "worker cannot take events (its broker does not answer) do not count.",
    )
    broker_wait_seconds: Annotated[float, Field(ge=0)] = Field(
        120.0, description="At start, how long to wait for a broker that does not answer, "
        "retrying with backoff (1 s doubling up to 15 s), before giving up; 0: not at all.",
    )
    session_timeout_seconds: Annotated[float, Field(gt=0)] = Field(
        10.0, description="Kafka consumer session timeout; also how fast a group forms."
    )
    data_dir: Path = Field(Path("tokenradar-data"), description="Faust's local data directory.")
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        0, description="Port for Prometheus /metrics; 0 turns it off."
    )
    metrics_host: str = Field(
        "127.0.0.1", description="Address /metrics listens on; 0.0.0.0 inside a container."
    )
    decoded_users: Annotated[int, Field(ge=1)] = Field(
        LIVE_STATES, description="Users' states kept decoded in memory, the most recently "
        "scored (about 13 KB each, against 2.5-2.8 KB as stored bytes): more take memory, "
        "fewer take CPU, as a user scored after this many others is decoded again (about "
        "60-90 us on a 100 us event). Results are the same either way.",
    )
    stall_seconds: Annotated[float, Field(gt=0)] = Field(
        60.0,
        description="Events waiting on assigned partitions with none processed for this "
        "long make the worker stalled: /readyz answers 503, tokenradar_stalled is 1.",
    )


class WorkerSettings(Pseudonymisation, KafkaSecurity, Retention, InputLimitSettings,
                     _WorkerOptions):
    """Everything ``tokenradar worker`` is told, in this order in ``--help``."""

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        hosts = bootstrap_of(value)
        for host in hosts:
            name, _, port = host.rpartition(":")
            if not name or "/" in name or not port.isdigit():
                raise ValueError(
                    f"{value!r} is not a broker address: give kafka://host:port[,host:port] "
                    "or host:port"
                )
        return "kafka://" + ",".join(hosts)

    @property
    def bootstrap_servers(self) -> list[str]:
        """The broker addresses as kafka-python and aiokafka take them."""
        return bootstrap_of(self.broker)

    @classmethod
    def from_sources(
        cls, options: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> WorkerSettings:
        """Options win over ``TOKENRADAR_<NAME>`` variables, which win over defaults."""
        settings: WorkerSettings = super().from_sources(options, environ)
        return settings
