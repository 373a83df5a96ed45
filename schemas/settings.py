"""Worker settings: where the broker is, which topics, which group; one frozen object.

Every option comes from the command line or the environment (``TOKENRADAR_*``), is
validated once at start, and is never created at import time.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_PREFIX = "TOKENRADAR_"


def bootstrap_of(url: str) -> list[str]:
    """``kafka://h:p,h2:p2`` or ``h:p`` -> ``["h:p", "h2:p2"]``, as Kafka clients take it."""
    return [host.strip() for host in url.strip().removeprefix("kafka://").split(",")]


class WorkerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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
        1000, description="Events taken from the stream at a time."
    )
    batch_seconds: Annotated[float, Field(gt=0)] = Field(
        0.2, description="Longest wait to fill a batch before scoring what arrived."
    )
    quiet_flush_seconds: Annotated[float, Field(gt=0)] = Field(
        10.0, description="Wall-clock seconds without a new event after which a routing "
        "key's held events (see scoring.reorder_seconds) are scored, in order.",
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
    stall_seconds: Annotated[float, Field(gt=0)] = Field(
        60.0,
        description="Events waiting on assigned partitions with none processed for this "
        "long make the worker stalled: /readyz answers 503, tokenradar_stalled is 1.",
    )

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
    def add_options(cls, parser: argparse.ArgumentParser) -> None:
        """One ``--option`` per setting, with its description, variable and default: the
        one list ``tokenradar worker`` and ``python -m tokenradar.streams.worker`` share.
        Nothing is parsed into a default, so ``$TOKENRADAR_*`` still wins over it."""
        for name, field in cls.model_fields.items():
            default = "none" if field.default is None else field.default
            parser.add_argument(
                "--" + name.replace("_", "-"), default=argparse.SUPPRESS,
                help=f"{field.description} Also ${ENV_PREFIX}{name.upper()} "
                     f"(default: {default})")

    @classmethod
    def from_sources(
        cls, options: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> WorkerSettings:
        """Options win over ``TOKENRADAR_<NAME>`` variables, which win over defaults."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            env_value = environ.get(ENV_PREFIX + name.upper())
            if env_value:
                values[name] = env_value
            if options.get(name) is not None:
                values[name] = options[name]
        return cls.model_validate(values)
