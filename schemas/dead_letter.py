"""The dead letter: an input message tokenradar could not score, described and redacted.

A dead letter says why and where (the producer's topic, partition, offset and key),
and describes the message without carrying it: its size and SHA-256, and, for a JSON
object, what each field of the contract held (its type and length; the value only
for the fields that identify the request and are needed to fix the producer). Fields
outside the contract are counted, never copied, names included: producers put prompt
text there. The original stays in the input topic, for its retention, found by its
offset and checked by its SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from tokenradar.schemas.events import TokenUsageEvent

KEPT_KEY_BYTES = 1024
"""Of a message key, the bytes kept: a user id is at most 256 characters (1 KiB of
UTF-8), so a key that is a user id is kept whole, and a key of megabytes is not."""
KEPT_VALUE_FIELDS = {
    "event_id": "string", "timestamp": "string", "model": "string", "client": "string",
    "schema_version": "integer", "input_tokens": "integer", "output_tokens": "integer",
    "cache_read_tokens": "integer", "cost_usd": "number",
}
"""Contract fields whose values a dead letter keeps, when of the type named here (and
short): they find the request and show the producer its mistake, and say nothing of a
person (``user_id``, ``team``, ``session_id`` and ``prompt_fingerprint`` are described,
never copied). A value of another type (text where a count belongs) is described only."""
KEPT_VALUE_CHARACTERS = 64
"""A kept string value longer than this is described instead: no contract field value
that helps fix a producer is longer (an event id of 128 characters is already odd)."""
CONTRACT_FIELDS = frozenset(TokenUsageEvent.model_fields)


class FieldSummary(BaseModel):
    """What one contract field of a dead message held: its JSON type and size, and its
    value only when :data:`KEPT_VALUE_FIELDS` names it and it is short."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str = Field(description="string, integer, number, boolean, null, array or object.")
    length: int | None = Field(None, description="Characters of a string, items of an "
                               "array, fields of an object.")
    value: str | int | float | bool | None = Field(
        None, description="The value itself, for kept fields only (see the README).")


class DeadLetter(BaseModel):
    """What goes to ``token-usage.dlq``: why a message was not scored, where it came
    from, and a redacted description of it (never its bytes)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    reason: str = Field(description="Why the message was not scored, naming the field at "
                        "fault and the kind of value found; it never quotes the message.")
    error_type: str = Field(
        description="not_utf8, not_json, not_an_object, schema, too_large, future; "
        "invalid_verdict for a feedback message that is not a verdict; or scoring_error "
        "when a valid event made the detectors fail (a bug to report).")
    original_size: int = Field(description="The message value's size in bytes.")
    original_sha256: str = Field(description="The message value's SHA-256, hex.")
    fields: dict[str, FieldSummary] | None = Field(
        None, description="A JSON object's contract fields, redacted; None when the "
        "message is not a JSON object (or was too large to read).")
    extra_fields: int = Field(0, description="How many fields outside the contract the "
                              "object had (neither names nor values are kept).")
    original_key_base64: str | None = Field(
        None, description="The producer's message key, base64: its first KEPT_KEY_BYTES bytes.")
    source_topic: str = Field(description="The producer's topic, also for a message that "
                              "failed after the worker's internal re-key hop.")
    source_partition: int
    source_offset: int
    dead_lettered_at: AwareDatetime

    @staticmethod
    def encode_key(key: bytes | None) -> str | None:
        """Base64 of a key's first KEPT_KEY_BYTES bytes (None stays None)."""
        return None if key is None else base64.b64encode(key[:KEPT_KEY_BYTES]).decode("ascii")

    @staticmethod
    def describe(raw: bytes, readable: bool = True
                 ) -> tuple[dict[str, FieldSummary] | None, int]:
        """(contract fields redacted, number of other fields) of a message, if it is a JSON
        object; ``readable`` False (a message too large to read) gives (None, 0).

        >>> fields, extra = DeadLetter.describe(
        ...     b'{"event_id": "e7", "user_id": "ana", "input_tokens": -3, "prompt": "hi"}')
        >>> extra, {name: (f.type, f.length, f.value) for name, f in fields.items()}
        (1, {'event_id': ('string', 2, 'e7'), 'user_id': ('string', 3, None), \
'input_tokens': ('integer', None, -3)})
        """
        if not readable:
            return None, 0
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep
            return None, 0
        if not isinstance(document, dict):
            return None, 0
        fields = {name: _summary(name, value) for name, value in document.items()
                  if name in CONTRACT_FIELDS}
        return fields, len(document) - len(fields)

    @staticmethod
    def sha256(raw: bytes) -> str:
        return hashlib.sha256(raw).hexdigest()


def _summary(name: str, value: Any) -> FieldSummary:
    kept = KEPT_VALUE_FIELDS.get(name)
    if value is None or isinstance(value, bool):
        return FieldSummary(type="null" if value is None else "boolean")
    if isinstance(value, int):
        small = abs(value) < 10**18  # a longer one is absurd, and its digits say nothing
        return FieldSummary(type="integer",
                            value=value if kept in ("integer", "number") and small else None)
    if isinstance(value, float):
        finite = math.isfinite(value)  # NaN and Infinity are not JSON: they cannot be kept
        return FieldSummary(type="number",
                            value=value if kept in ("integer", "number") and finite else None)
    if isinstance(value, str):
        short = len(value) <= KEPT_VALUE_CHARACTERS
        return FieldSummary(type="string", length=len(value),
                            value=value if kept == "string" and short else None)
    kind = "array" if isinstance(value, list) else "object"
    return FieldSummary(type=kind, length=len(value))
