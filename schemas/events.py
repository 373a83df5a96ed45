"""The token-usage event: what platform teams produce to the ``token-usage`` topic.

Field names follow the OpenTelemetry GenAI conventions where one exists. Unknown
fields are accepted and ignored, so producers can send richer records.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError

CURRENT_EVENT_SCHEMA_VERSION = 1


class TokenUsageEvent(BaseModel):
    """One AI request's token usage. Never carries prompt contents."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: Annotated[str, Field(min_length=1, max_length=128)]
    timestamp: AwareDatetime = Field(
        description="Event time, RFC 3339 with an offset, e.g. 2026-11-24T09:15:02.120Z."
    )
    user_id: Annotated[str, Field(min_length=1, max_length=256)]
    team: str | None = None
    model: Annotated[str, Field(min_length=1)]
    input_tokens: NonNegativeInt
    output_tokens: NonNegativeInt
    cache_read_tokens: NonNegativeInt = 0
    cost_usd: Annotated[float, Field(ge=0)] | None = None
    client: str | None = None
    session_id: str | None = None
    prompt_fingerprint: str | None = Field(
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
