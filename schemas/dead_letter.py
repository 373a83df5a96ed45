"""The dead letter: an input message tokenradar could not score, kept with the reason."""

from __future__ import annotations

import base64

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class DeadLetter(BaseModel):
    """What goes to ``token-usage.dlq``: the original bytes, untouched, and why."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    reason: str = Field(description="Why the message was not scored, naming the field at fault.")
    error_type: str = Field(
        description="not_utf8, not_json, not_an_object, schema; or scoring_error when a "
        "valid event made the detectors fail (a bug to report, the event kept)."
    )
    original_base64: str = Field(description="The message value exactly as received, base64.")
    original_key_base64: str | None = None
    source_topic: str
    source_partition: int
    source_offset: int
    dead_lettered_at: AwareDatetime

    @property
    def original(self) -> bytes:
        return base64.b64decode(self.original_base64)

    @staticmethod
    def encode_bytes(raw: bytes | None) -> str | None:
        return None if raw is None else base64.b64encode(raw).decode("ascii")
