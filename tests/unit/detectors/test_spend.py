"""Alerts in money: a request's cost, an alert's estimated cost, unpriced models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tokenradar.detectors import ScoringEngine
from tokenradar.schemas import DetectorConfig, TokenUsageEvent

START = datetime(2026, 11, 2, 9, tzinfo=UTC)


def _request(i: int, tokens: int, model: str = "gpt-5",
             cost_usd: float | None = None) -> TokenUsageEvent:
    return TokenUsageEvent(event_id=f"e{i}", user_id="ana", model=model,
                           timestamp=START + timedelta(minutes=7 * i + i * i % 5),
                           input_tokens=tokens, output_tokens=300, cost_usd=cost_usd)


PRICED = DetectorConfig.model_validate(
    {"prices": {"models": {"gpt-5": {"input": 1.25, "output": 10.0}}}})


def test_a_request_costs_its_cost_usd_else_its_tokens_at_the_table() -> None:
    engine = ScoringEngine(PRICED)
    assert engine.cost_of(_request(0, 10_000, cost_usd=0.5)) == 0.5
    assert engine.cost_of(_request(0, 10_000)) == pytest.approx((10_000 * 1.25 + 3_000) / 1e6)
    # An unknown model: the default, $3 in and $15 out per million.
    assert engine.cost_of(_request(0, 10_000, model="o3")) == pytest.approx(
        (10_000 * 3.0 + 300 * 15.0) / 1e6)


def test_each_unpriced_model_is_reported_once() -> None:
    engine = ScoringEngine(PRICED)
    for model in ("o3", "gpt-5", "o3", "llama"):
        engine.cost_of(_request(0, 1_000, model=model))
    engine.cost_of(_request(0, 1_000, model="mistral", cost_usd=0.1))  # priced by its producer
    assert engine.take_unpriced_models() == ["o3", "llama"]
    engine.cost_of(_request(0, 1_000, model="o3"))
    assert engine.take_unpriced_models() == []


def test_a_spike_alert_carries_its_request_cost_and_says_it() -> None:
    engine = ScoringEngine(PRICED)
    state = engine.new_state("ana")
    for i in range(60):
        engine.score_event(state, _request(i, 1000 + 10 * (i % 9)), START)
    spike = engine.score_event(state, _request(60, 250_000, cost_usd=3.4), START).alerts[0]
    assert spike.feature == "tokens_per_request"
    assert spike.observed_cost == 3.4
    usual = spike.expected * (1000 * 1.25 + 3000) / 1e6 / 1300  # usual tokens at $/token
    assert spike.expected_cost == pytest.approx(usual, rel=0.2)
    assert spike.explanation.endswith("About $3.40 at this user's prices (usually under $0.01).")
