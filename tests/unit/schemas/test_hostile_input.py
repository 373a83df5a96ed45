"""Properties of parsing and dead-lettering over any input a producer can send (hypothesis).

Whatever the bytes: parsing gives an event or an InvalidEvent of a known type, never
another exception; a reason never quotes the message; a dead letter is small and never
carries a field outside the contract, nor the values of the contract fields that
describe a person.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenradar.schemas import DeadLetter, InvalidEvent, TokenUsageEvent, parse_event
from tokenradar.schemas.dead_letter import CONTRACT_FIELDS
from tokenradar.schemas.events import MAX_TOKENS, InputLimits

ERROR_TYPES = {"not_utf8", "not_json", "not_an_object", "schema", "too_large", "future"}
CANARY = "CANARY-prompt-text"
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

json_scalars = (st.none() | st.booleans() | st.integers() | st.floats()
                | st.text(max_size=80))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=20)
secret_text = st.text(max_size=40).map(lambda text: f"{CANARY} {text}")
"""What a producer should never have sent: prompt text."""


def _fate(raw: bytes, now: float | None = None) -> TokenUsageEvent | InvalidEvent:
    try:
        return parse_event(raw, now=now)
    except InvalidEvent as error:
        return error


@SETTINGS
@given(st.binary(max_size=4096))
def test_any_bytes_parse_to_an_event_or_a_known_invalid_type(raw: bytes) -> None:
    fate = _fate(raw)
    if isinstance(fate, InvalidEvent):
        assert fate.error_type in ERROR_TYPES and fate.reason


def _text(min_size: int = 0, max_size: int = 256, names: bool = False) -> st.SearchStrategy[str]:
    """Unicode text (no lone surrogates: JSON cannot carry them as text); ``names``: no
    control characters, as a user id or team may not have."""
    characters = st.characters(exclude_categories=["Cs", "Cc"] if names else ["Cs"])
    return st.text(characters, min_size=min_size, max_size=max_size)


valid_events = st.fixed_dictionaries(
    {
        "event_id": _text(1, 128),
        "timestamp": st.datetimes(min_value=datetime(1971, 1, 1),
                                  max_value=datetime(2026, 11, 24),
                                  timezones=st.just(UTC)).map(lambda t: t.isoformat()),
        "user_id": _text(1, 256, names=True),
        "model": _text(1, 256),
        "input_tokens": st.integers(0, MAX_TOKENS),
        "output_tokens": st.integers(0, MAX_TOKENS),
    },
    optional={"team": _text(0, 256, names=True),
              "cost_usd": st.floats(0, 1e6), "session_id": _text(0, 256),
              "cache_read_tokens": st.integers(0, MAX_TOKENS)},
)


@SETTINGS
@given(valid_events, st.dictionaries(st.text(max_size=20).map(lambda n: "x-" + n),
                                     json_values, max_size=5))
def test_an_event_within_the_contract_is_accepted_whatever_else_it_carries(
        event: dict[str, Any], extra: dict[str, Any]) -> None:
    parsed = _fate(json.dumps({**event, **extra}).encode(), now=NOW.timestamp())
    assert isinstance(parsed, TokenUsageEvent), parsed
    assert parsed.user_id == event["user_id"]
    assert parsed.input_tokens == event["input_tokens"]
    again = parse_event(parsed.model_dump_json(exclude_none=True).encode())  # what is held
    assert again == parsed


@SETTINGS
@given(valid_events, st.sampled_from(sorted(CONTRACT_FIELDS - {"schema_version"})),
       json_values | secret_text, st.dictionaries(secret_text, secret_text, max_size=3))
def test_a_reason_and_a_dead_letter_never_carry_text_outside_the_contract(
        event: dict[str, Any], field: str, value: Any, extra: dict[str, Any]) -> None:
    """Any contract field replaced by any JSON value (prompt text too), and extra fields
    (names and values) of prompt text: the reason quotes none of it, the dead letter
    keeps values only of the request's identifying fields, and no extra field at all."""
    document = {**event, field: value, **extra}
    raw = json.dumps(document).encode()
    fate = _fate(raw, now=NOW.timestamp())
    if isinstance(fate, TokenUsageEvent):
        return
    assert CANARY not in fate.reason
    fields, extra_count = DeadLetter.describe(raw)
    assert fields is not None and extra_count == len(extra)
    assert set(fields) <= CONTRACT_FIELDS
    for name in ("user_id", "team", "session_id", "prompt_fingerprint"):
        assert name not in fields or fields[name].value is None
    letter = DeadLetter(reason=fate.reason, error_type=fate.error_type,
                        original_size=len(raw), original_sha256=DeadLetter.sha256(raw),
                        fields=fields, extra_fields=extra_count, source_topic="usage",
                        source_partition=0, source_offset=0, dead_lettered_at=NOW)
    text = letter.model_dump_json()
    assert len(text) < 8192
    if field not in {"event_id", "model", "client", "timestamp"}:  # kept when short
        assert CANARY not in text


@SETTINGS
@given(st.binary(max_size=2048) | json_values.map(lambda v: json.dumps(v).encode()))
def test_describing_any_message_is_bounded_and_never_raises(raw: bytes) -> None:
    fields, extra = DeadLetter.describe(raw)
    assert fields is None or (set(fields) <= CONTRACT_FIELDS and extra >= 0)


@SETTINGS
@given(valid_events, st.floats(min_value=0, max_value=30 * 86_400))
def test_an_event_is_future_exactly_when_past_the_bound_ahead_of_the_clock(
        event: dict[str, Any], ahead: float) -> None:
    now = datetime.fromisoformat(event["timestamp"]) - timedelta(seconds=ahead)
    limits = InputLimits(max_ahead_seconds=86_400)
    try:
        parse_event(json.dumps(event).encode(), limits, now=now.timestamp())
    except InvalidEvent as error:
        assert error.error_type == "future" and ahead > 86_400
    else:
        assert ahead <= 86_400 or math.isclose(ahead, 86_400)
