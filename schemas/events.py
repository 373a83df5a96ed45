"""The token-usage event: what platform teams produce to the ``token-usage`` topic.

Field names follow the OpenTelemetry GenAI conventions where one exists. Unknown
fields are accepted and ignored, so producers can send richer records.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

CURRENT_EVENT_SCHEMA_VERSION = 1


MAX_EVENT_BYTES = 65_536
"""An event's message is a few hundred bytes; one past this is not an event, and would
burden the re-key hop, the reorder buffer and the changelog with it."""
MAX_TOKENS = 1_000_000_000
"""Tokens of one request: a hundred times the largest context window sold today. A
count beyond it is a broken producer, and would poison the user's baselines."""
MAX_COST_USD = 1_000_000.0
MAX_NAME_LENGTH = 256
"""Longest team, model, client, session or fingerprint: a name, not a document."""
Tokens = Annotated[int, Field(ge=0, le=MAX_TOKENS, strict=True)]
"""A token count: a JSON integer (not "12", not 12.5), 0 to MAX_TOKENS."""
Name = Annotated[str, Field(max_length=MAX_NAME_LENGTH)]


class TokenUsageEvent(BaseModel):
    """One AI request's token usage. Never carries prompt contents."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: Annotated[str, Field(min_length=1, max_length=128)]
    timestamp: AwareDatetime = Field(
        description="Event time, RFC 3339 with an offset, e.g. 2026-11-24T09:15:02.120Z."
    )
    user_id: Annotated[str, Field(min_length=1, max_length=256)]
    team: Name | None = None
    model: Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
    input_tokens: Tokens
    output_tokens: Tokens
    cache_read_tokens: Tokens = 0
    cost_usd: Annotated[float, Field(ge=0, le=MAX_COST_USD, allow_inf_nan=False)] | None = None
    client: Name | None = None
    session_id: Name | None = None
    prompt_fingerprint: Name | None = Field(
        default=None, description="A hash of the normalised prompt, never the prompt itself."
    )
    schema_version: Annotated[int, Field(ge=1, le=CURRENT_EVENT_SCHEMA_VERSION)] = (
        CURRENT_EVENT_SCHEMA_VERSION
    )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def epoch_seconds(self) -> float:
        return self.timestamp.timestamp()


class InvalidEvent(ValueError):
    """An input message that cannot be scored; ``error_type`` says which way it is broken."""

    def __init__(self, error_type: str, reason: str) -> None:
        super().__init__(reason)
        self.error_type = error_type
        self.reason = reason


def parse_event(raw: bytes) -> TokenUsageEvent:
    """Parse one message value, or raise :class:`InvalidEvent` naming the field at fault."""
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEvent("too_large", f"{len(raw):,} bytes, over the {MAX_EVENT_BYTES:,} "
                           "bytes an event may have")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(
            "not_utf8", f"not UTF-8 text: byte {exc.start} is {raw[exc.start]:#04x}"
        ) from None
    try:
        return TokenUsageEvent.model_validate_json(raw)
    except ValidationError as exc:
        error_type, reason = _describe(exc)
        raise InvalidEvent(error_type, reason) from None


def _describe(exc: ValidationError) -> tuple[str, str]:
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return "not_json", f"not valid JSON: {first['msg']}"
    if first["type"] == "model_type":
        return "not_an_object", "the message is JSON but not an object"
    parts = []
    for error in errors[:5]:
        field = ".".join(str(p) for p in error["loc"]) or "(message)"
        got = "" if error["type"] == "missing" else f" (got {error.get('input')!r:.60})"
        parts.append(f"field '{field}': {error['msg']}{got}")
    more = f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
    return "schema", "; ".join(parts) + more
