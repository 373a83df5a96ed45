"""The token-usage event: what platform teams produce to the ``token-usage`` topic.

Field names follow the OpenTelemetry GenAI conventions where one exists. Unknown
fields are accepted and ignored, so producers can send richer records.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Any, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

CURRENT_EVENT_SCHEMA_VERSION = 1


MAX_EVENT_BYTES = 65_536
"""Default of ``max_event_bytes`` (:class:`InputLimits`): an event's message is a few
hundred bytes; one past this is not an event, and would burden the re-key hop, the
reorder buffer and the changelog with it."""
MAX_AHEAD_SECONDS = 86_400.0
"""Default of ``max_ahead_seconds`` (:class:`InputLimits`): a producer's clock may be off
by minutes, or by a wrongly labelled time zone (up to 14 hours); an event dated further
ahead of the processing clock is broken, and scored it would blind its user's detectors
(their hours and days would never close again before that date)."""
MAX_TOKENS = 1_000_000_000
"""Tokens of one request: a hundred times the largest context window sold today. A
count beyond it is a broken producer, and would poison the user's baselines."""
MAX_COST_USD = 1_000_000.0
MAX_NAME_LENGTH = 256
"""Longest team, model, client, session or fingerprint: a name, not a document."""
Tokens = Annotated[int, Field(ge=0, le=MAX_TOKENS, strict=True)]
"""A token count: a JSON integer (not "12", not 12.5), 0 to MAX_TOKENS."""
Name = Annotated[str, Field(max_length=MAX_NAME_LENGTH)]
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"
"""A user id or team is part of the worker's table keys, whose separator is 0x1f: a
control character in one could make it another's key, or move it to another partition."""


class TokenUsageEvent(BaseModel):
    """One AI request's token usage. Never carries prompt contents."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: Annotated[str, Field(min_length=1, max_length=128)]
    timestamp: AwareDatetime = Field(
        description="Event time, RFC 3339 with an offset, e.g. 2026-11-24T09:15:02.120Z."
    )
    user_id: Annotated[str, Field(min_length=1, max_length=256, pattern=NO_CONTROL_CHARACTERS)]
    team: Annotated[str, Field(max_length=MAX_NAME_LENGTH, pattern=NO_CONTROL_CHARACTERS)
                    ] | None = None
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

    @field_validator("timestamp", mode="before")
    @classmethod
    def _not_a_number(cls, value: object) -> object:
        """Pydantic takes a number as epoch seconds (or milliseconds, guessing from its
        size); the contract asks for RFC 3339 text, whose meaning no one has to guess."""
        if isinstance(value, int | float):
            raise ValueError("give RFC 3339 text with an offset, not a number")
        return value

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @cached_property
    def epoch_seconds(self) -> float:
        """The event time as epoch seconds: computed once, as scoring reads it often."""
        return self.timestamp.timestamp()

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> Self:
        """A copy whose ``epoch_seconds`` follows its own (maybe updated) timestamp."""
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("epoch_seconds", None)
        return copied


class InputLimits(BaseModel):
    """What the worker and ``replay`` accept as an event, beyond the schema: the same
    limits on both, so that they score the same events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_event_bytes: Annotated[int, Field(ge=1024, le=512 * 1024)] = Field(
        MAX_EVENT_BYTES, description="A larger message is dead-lettered as too_large, "
        "unread; at most 512 KiB, so that a forwarded message stays far below Kafka's 1 MB "
        "default.")
    max_ahead_seconds: Annotated[float, Field(ge=0)] = Field(
        MAX_AHEAD_SECONDS, description="An event dated further ahead of the processing "
        "clock (replay: --now) is dead-lettered as future: scored, it would blind its "
        "user's detectors until that date.")


class InvalidEvent(ValueError):
    """An input message that cannot be scored; ``error_type`` says which way it is broken."""

    def __init__(self, error_type: str, reason: str) -> None:
        super().__init__(reason)
        self.error_type = error_type
        self.reason = reason


DEFAULT_LIMITS = InputLimits()


def parse_event(raw: bytes, limits: InputLimits = DEFAULT_LIMITS,
                now: float | None = None) -> TokenUsageEvent:
    """Parse one message value, or raise :class:`InvalidEvent` naming the field at fault.

    ``now`` (epoch seconds) is the processing clock: with it, an event dated more than
    ``limits.max_ahead_seconds`` after it is invalid (``future``). A reason never quotes
    the message: it names the field and the kind of value found, so that a dead letter
    carries no prompt text a producer put where it should not be.

    Examples
    --------
    >>> def reason(raw, now=None):
    ...     try:
    ...         parse_event(raw, now=now)
    ...     except InvalidEvent as error:
    ...         print(error.error_type, error.reason)
    >>> reason(b'{"event_id": "e1", "user_id": "ana", "input_tokens": "my prompt"}')
    ... # doctest: +NORMALIZE_WHITESPACE
    schema field 'timestamp': Field required; field 'model': Field required;
    field 'input_tokens': Input should be a valid integer (got a string of 9 characters);
    field 'output_tokens': Field required
    >>> reason(b'{"event_id": "e", "timestamp": "9999-12-31T00:00:00Z", "user_id": "u",'
    ...        b' "model": "m", "input_tokens": 1, "output_tokens": 1}', now=0.0)
    ... # doctest: +NORMALIZE_WHITESPACE
    future the event time is 2,932,896 days after the processing clock, more than the
    24 hours (max_ahead_seconds) an event may be ahead
    """
    if len(raw) > limits.max_event_bytes:
        raise InvalidEvent("too_large", f"{len(raw):,} bytes, over the "
                           f"{limits.max_event_bytes:,} bytes an event may have "
                           "(max_event_bytes)")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent("not_utf8", f"not UTF-8 text: invalid byte at position {exc.start}"
                           ) from None
    try:
        event = TokenUsageEvent.model_validate_json(raw)
    except ValidationError as exc:
        error_type, reason = _describe(exc)
        raise InvalidEvent(error_type, reason) from None
    if now is not None and event.epoch_seconds - now > limits.max_ahead_seconds:
        raise InvalidEvent("future", f"the event time is {_duration(event.epoch_seconds - now)}"
                           f" after the processing clock, more than the "
                           f"{_duration(limits.max_ahead_seconds)} (max_ahead_seconds) an "
                           "event may be ahead")
    return event


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
        got = "" if error["type"] == "missing" else f" (got {json_kind(error.get('input'))})"
        parts.append(f"field '{field}': {error['msg']}{got}")
    more = f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
    return "schema", "; ".join(parts) + more


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds <= 48 * 3600:
        return f"{seconds / 3600:,.3g} hours"
    return f"{seconds / 86_400:,.0f} days"


def json_kind(value: object) -> str:
    """What a JSON value is, without quoting it: its type, and a string's length.

    >>> json_kind("prompt text"), json_kind(10**400), json_kind(None), json_kind([1, 2])
    ('a string of 11 characters', 'an integer', 'null', 'an array of 2 items')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return f"a string of {len(value):,} characters"
    if isinstance(value, list):
        return f"an array of {len(value):,} items"
    if isinstance(value, dict):
        return f"an object of {len(value):,} fields"
    return "a value"
