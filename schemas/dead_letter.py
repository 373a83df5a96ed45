"""The dead letter: an input message tokenradar could not score, kept with the reason."""

from __future__ import annotations

import base64

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

KEPT_BYTES = 4096
"""Of a dead message's value (and key), the bytes kept in its dead letter: enough to see
what it was, bounded so that a message of megabytes makes a dead letter of kilobytes."""


class DeadLetter(BaseModel):
    """What goes to ``token-usage.dlq``: the original bytes (up to KEPT_BYTES of them,
    with the whole message's size and SHA-256), and why."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    reason: str = Field(description="Why the message was not scored, naming the field at fault.")
    error_type: str = Field(
        description="not_utf8, not_json, not_an_object, schema, too_large; "
        "invalid_verdict for a feedback message that is not a verdict; or "
        "scoring_error when a valid event made the detectors fail (a bug to report, the "
        "event kept)."
    )
    original_base64: str = Field(
        description="The message value as received, base64: its first KEPT_BYTES bytes.")
    original_size: int | None = Field(None, description="The whole value's size in bytes.")
    original_sha256: str | None = Field(None, description="The whole value's SHA-256, hex.")
    original_key_base64: str | None = Field(
        None, description="The message key, base64: its first KEPT_BYTES bytes.")
    source_topic: str
    source_partition: int
    source_offset: int
    dead_lettered_at: AwareDatetime

    @property
    def original(self) -> bytes:
        return base64.b64decode(self.original_base64)

    @staticmethod
    def encode_bytes(raw: bytes | None) -> str | None:
        """Base64 of ``raw``'s first KEPT_BYTES bytes (None stays None)."""
        return None if raw is None else base64.b64encode(raw[:KEPT_BYTES]).decode("ascii")

    @property
    def truncated(self) -> bool:
        """The dead letter keeps only the start of its message."""
        return self.original_size is not None and self.original_size > KEPT_BYTES
