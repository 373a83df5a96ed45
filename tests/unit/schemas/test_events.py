"""TokenUsageEvent and parse_event: what a producer may send, and what goes to the DLQ."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from tokenradar.schemas import InvalidEvent, TokenUsageEvent, parse_event
from tokenradar.schemas.events import CURRENT_EVENT_SCHEMA_VERSION

REQUIRED = ["event_id", "timestamp", "user_id", "model", "input_tokens", "output_tokens"]
OPTIONAL = ["team", "cache_read_tokens", "cost_usd", "client", "session_id",
            "prompt_fingerprint", "schema_version"]


def _field_names(exc: ValidationError) -> set[str]:
    return {str(error["loc"][0]) for error in exc.errors()}


def test_complete_event_is_accepted_with_its_values(valid_event: dict[str, Any]) -> None:
    event = TokenUsageEvent.model_validate(valid_event)
    assert event.event_id == valid_event["event_id"]
    assert event.input_tokens == 1200
    assert event.total_tokens == 1500
    assert event.timestamp.utcoffset() is not None


@pytest.mark.parametrize("field", REQUIRED)
def test_event_without_a_required_field_is_rejected_naming_it(
        valid_event: dict[str, Any], field: str) -> None:
    del valid_event[field]
    with pytest.raises(ValidationError) as caught:
        TokenUsageEvent.model_validate(valid_event)
    assert _field_names(caught.value) == {field}


@pytest.mark.parametrize("field", OPTIONAL)
def test_event_without_an_optional_field_is_accepted(
        valid_event: dict[str, Any], field: str) -> None:
    del valid_event[field]
    TokenUsageEvent.model_validate(valid_event)


def test_defaults_are_no_cache_reads_and_schema_version_1(valid_event: dict[str, Any]) -> None:
    del valid_event["cache_read_tokens"], valid_event["schema_version"]
    event = TokenUsageEvent.model_validate(valid_event)
    assert event.cache_read_tokens == 0
    assert event.schema_version == 1


@pytest.mark.parametrize("field", ["input_tokens", "output_tokens", "cache_read_tokens",
                                   "cost_usd"])
def test_negative_amounts_are_rejected(valid_event: dict[str, Any], field: str) -> None:
    valid_event[field] = -1
    with pytest.raises(ValidationError) as caught:
        TokenUsageEvent.model_validate(valid_event)
    assert _field_names(caught.value) == {field}


@pytest.mark.parametrize("timestamp", ["2026-11-24T09:15:02.120Z", "2026-11-24T10:15:02+01:00",
                                       "2026-11-24T04:15:02.120-05:00"])
def test_timestamps_with_an_offset_are_accepted(
        valid_event: dict[str, Any], timestamp: str) -> None:
    valid_event["timestamp"] = timestamp
    assert TokenUsageEvent.model_validate(valid_event).timestamp.utcoffset() is not None


@pytest.mark.parametrize("timestamp", ["2026-11-24T09:15:02.120", "2026-11-24", "yesterday"])
def test_event_without_offset_is_rejected_naming_timestamp(
        valid_event: dict[str, Any], timestamp: str) -> None:
    valid_event["timestamp"] = timestamp
    with pytest.raises(ValidationError) as caught:
        TokenUsageEvent.model_validate(valid_event)
    assert _field_names(caught.value) == {"timestamp"}


@pytest.mark.parametrize(("field", "longest"), [("event_id", 128), ("user_id", 256)])
def test_ids_are_accepted_up_to_their_limit_and_rejected_above(
        valid_event: dict[str, Any], field: str, longest: int) -> None:
    valid_event[field] = "x" * longest
    TokenUsageEvent.model_validate(valid_event)
    valid_event[field] = "x" * (longest + 1)
    with pytest.raises(ValidationError) as caught:
        TokenUsageEvent.model_validate(valid_event)
    assert _field_names(caught.value) == {field}


@pytest.mark.parametrize("field", ["event_id", "user_id", "model"])
def test_empty_ids_are_rejected(valid_event: dict[str, Any], field: str) -> None:
    valid_event[field] = ""
    with pytest.raises(ValidationError):
        TokenUsageEvent.model_validate(valid_event)


def test_unknown_fields_are_accepted_and_ignored(valid_event: dict[str, Any]) -> None:
    valid_event["gen_ai.system"] = "anthropic"
    valid_event["latency_ms"] = 840
    event = TokenUsageEvent.model_validate(valid_event)
    assert "latency_ms" not in event.model_dump()
    assert event == TokenUsageEvent.model_validate(
        {k: v for k, v in valid_event.items() if k not in ("gen_ai.system", "latency_ms")})


def test_schema_version_above_current_is_rejected(valid_event: dict[str, Any]) -> None:
    valid_event["schema_version"] = CURRENT_EVENT_SCHEMA_VERSION + 1
    with pytest.raises(ValidationError) as caught:
        TokenUsageEvent.model_validate(valid_event)
    assert _field_names(caught.value) == {"schema_version"}


def test_parse_event_reads_utf8_json_bytes(valid_event: dict[str, Any]) -> None:
    valid_event["user_id"] = "zoë@example.com"
    event = parse_event(json.dumps(valid_event, ensure_ascii=False).encode("utf-8"))
    assert event.user_id == "zoë@example.com"


@pytest.mark.parametrize(("raw", "error_type"), [
    (b"{not json", "not_json"),
    (b"", "not_json"),
    (b'{"event_id": "a",', "not_json"),
    (b"[1, 2]", "not_an_object"),
    (b'"a string"', "not_an_object"),
    (b"null", "not_an_object"),
    (b"42", "not_an_object"),
])
def test_unparseable_messages_are_classified(raw: bytes, error_type: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw)
    assert caught.value.error_type == error_type
    assert caught.value.reason


@pytest.mark.parametrize("raw", [
    b"\xff\xfe{}",
    '{"event_id": "caf\u00e9"}'.encode("latin-1"),
])
def test_message_that_is_not_utf8_is_classified_not_utf8(raw: bytes) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw)
    assert caught.value.error_type == "not_utf8"


@pytest.mark.parametrize("field", REQUIRED)
def test_schema_error_reason_names_the_missing_field(
        valid_event: dict[str, Any], field: str) -> None:
    del valid_event[field]
    with pytest.raises(InvalidEvent) as caught:
        parse_event(json.dumps(valid_event).encode())
    assert caught.value.error_type == "schema"
    assert f"'{field}'" in caught.value.reason


def test_schema_error_reason_names_the_bad_field_and_the_kind_of_value_never_the_value(
        valid_event: dict[str, Any]) -> None:
    valid_event["input_tokens"] = -5
    valid_event["team"] = "secret-prompt " * 30
    valid_event["notes"] = "more secret prompt text"
    with pytest.raises(InvalidEvent) as caught:
        parse_event(json.dumps(valid_event).encode())
    reason = caught.value.reason
    assert "field 'input_tokens'" in reason and "(got an integer)" in reason
    assert "field 'team'" in reason and "(got a string of 420 characters)" in reason
    assert "-5" not in reason and "secret" not in reason
    assert "'output_tokens'" not in reason


def test_an_event_far_ahead_of_the_clock_is_future_within_the_bound_it_is_scored(
        valid_event: dict[str, Any]) -> None:
    from tokenradar.schemas.events import InputLimits

    now = datetime(2026, 11, 24, 9, tzinfo=UTC).timestamp()  # the event's: 09:15:02
    limits = InputLimits(max_ahead_seconds=3600)
    assert parse_event(json.dumps(valid_event).encode(), limits, now=now)
    valid_event["timestamp"] = "2026-11-24T10:00:01Z"  # 1 h 1 s ahead
    with pytest.raises(InvalidEvent) as caught:
        parse_event(json.dumps(valid_event).encode(), limits, now=now)
    assert caught.value.error_type == "future"
    assert "max_ahead_seconds" in caught.value.reason
    assert parse_event(json.dumps(valid_event).encode(), limits)  # no clock, no bound


@pytest.mark.parametrize(("field", "raw_value"), [
    ("input_tokens", "1" + "0" * 400),  # 10**400: an OverflowError in the baselines once
    ("output_tokens", "1000000000000000000"),
    ("cache_read_tokens", '"12"'),
    ("input_tokens", "12.5"),
    ("cost_usd", "Infinity"),
    ("cost_usd", "NaN"),
    ("team", json.dumps("t" * 5_000)),  # a 5 MB one once made a 10 MB changelog record
    ("model", json.dumps("m" * 300)),
])
def test_absurd_values_are_invalid_naming_the_field(
        valid_event: dict[str, Any], field: str, raw_value: str) -> None:
    document = json.dumps({**valid_event, field: "__value__"})
    raw = document.replace('"__value__"', raw_value).encode()
    with pytest.raises(InvalidEvent) as error:
        parse_event(raw)
    assert field in error.value.reason
    assert len(error.value.reason) < 400  # the reason names the field, not the value


def test_token_counts_up_to_the_limit_are_accepted(valid_event: dict[str, Any]) -> None:
    from tokenradar.schemas.events import MAX_TOKENS

    event = parse_event(json.dumps({**valid_event, "input_tokens": MAX_TOKENS}).encode())
    assert event.input_tokens == MAX_TOKENS


def test_a_message_past_the_event_size_limit_is_too_large_whatever_it_holds(
        valid_event: dict[str, Any]) -> None:
    from tokenradar.schemas.events import MAX_EVENT_BYTES

    # Valid, but for an unknown field of 5 MB: it would burden the re-key hop and the
    # changelog (once, it stopped a worker for good).
    raw = json.dumps({**valid_event, "notes": "x" * 5_000_000}).encode()
    with pytest.raises(InvalidEvent) as error:
        parse_event(raw)
    assert error.value.error_type == "too_large"
    assert f"{len(raw):,} bytes" in error.value.reason
    just_below = json.dumps({**valid_event, "notes": ""}).encode()
    padding = MAX_EVENT_BYTES - len(just_below)
    assert parse_event(json.dumps({**valid_event, "notes": "x" * padding}).encode())
