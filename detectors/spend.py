"""What an alert costs: a user's dollars per token and per request, and the alert's
estimated cost in USD.

A request costs its event's ``cost_usd`` when the producer sends it, else its tokens
at the configured price table (:class:`tokenradar.schemas.money.PriceTable`). Each
user keeps two fading means: dollars per token over their last few hundred requests
(their usual price, for a quantity in tokens) and dollars per request over their last
ten or so (the going price of what they are doing now, for a count of requests).
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenradar.detectors.base import Finding
from tokenradar.detectors.budget import money
from tokenradar.detectors.records import Record
from tokenradar.schemas import AnomalyEvent, TokenUsageEvent
from tokenradar.schemas.money import ModelPrice, PriceTable

PER_TOKEN_FADING = 0.01
PER_REQUEST_FADING = 0.1
TOKEN_FEATURES = frozenset({"tokens_per_request", "tokens_per_hour", "tokens_per_active_hour",
                            "input_tokens_per_request", "tokens_per_active_hour_by_day",
                            "output_tokens_per_request_by_day"})
"""Findings measured in tokens: priced at the user's usual dollars per token."""
REQUEST_FEATURES = frozenset({"requests_per_window", "off_hours_agent_requests",
                              "requests_on_new_model_or_client", "regular_request_gaps"})
"""Findings measured in requests: priced at the user's recent dollars per request."""
MAX_PRICED_MODELS = 4096
"""Model names whose prices are remembered (names come from producers: bounded)."""
MIN_DOLLARS_SAID = 1.0
"""Below this, an alert's cost is in its fields only: cents do not help anyone act."""


class Pricing:
    """The price table, remembered per model name, and the models it does not name."""

    def __init__(self, prices: PriceTable) -> None:
        self.prices = prices
        self._known: dict[str, tuple[ModelPrice, bool]] = {}
        self._unpriced: list[str] = []

    def cost_of(self, event: TokenUsageEvent) -> float:
        """USD of a request: its own ``cost_usd``, else its tokens at the price table."""
        if event.cost_usd is not None:
            return event.cost_usd
        priced = self._known.get(event.model)
        if priced is None:
            priced = self.prices.price_for(event.model)
            if len(self._known) < MAX_PRICED_MODELS:
                self._known[event.model] = priced
                if not priced[1]:
                    self._unpriced.append(event.model)
        return priced[0].cost(event.input_tokens, event.output_tokens, event.cache_read_tokens)

    def take_unpriced(self) -> list[str]:
        """Models first priced at the default since the last call."""
        models, self._unpriced = self._unpriced, []
        return models


def _fade(mean: float, value: float, fading: float) -> float:
    """A fading mean's next value (the first value itself), kept to 4 significant digits:
    an estimate needs no more, and the user's state stays small."""
    return float(f"{value if mean == 0.0 else mean + fading * (value - mean):.4g}")


class SpendRates(Record):
    """A user's fading dollars per token and per request (a record of UserState)."""

    per_token: float = 0.0
    per_request: float = 0.0

    @property
    def known(self) -> bool:
        return self.per_request > 0.0

    def learn(self, cost: float, tokens: int) -> None:
        self.per_request = _fade(self.per_request, cost, PER_REQUEST_FADING)
        self.per_token = _fade(self.per_token, cost / max(tokens, 1), PER_TOKEN_FADING)


@dataclass(frozen=True, slots=True)
class AlertCost:
    observed: float
    expected: float

    def sentence(self, counted: bool) -> str:
        """The cost in words, to follow an explanation."""
        if counted and self.expected == 0.0:
            return f"About {money(self.observed)} of usage so far."
        return (f"About {money(self.observed)} at this user's prices (usually "
                f"{money(self.expected)}).")


def alert_cost(finding: Finding, rates: SpendRates, event_cost: float) -> AlertCost | None:
    """The finding's observed and expected quantities in USD; None for a quantity that
    is not usage (alerts counted, a team's ratio) or before the user has a price."""
    if not rates.known:
        return None
    if finding.feature in TOKEN_FEATURES:
        price = rates.per_token
        observed = event_cost if finding.single_event else finding.observed * price
        return AlertCost(_dollars(observed), _dollars(finding.expected * price))
    if finding.feature in REQUEST_FEATURES:
        price = rates.per_request
        return AlertCost(_dollars(finding.observed * price), _dollars(finding.expected * price))
    return None


def _dollars(value: float) -> float:
    """An estimate's USD to 4 significant digits: a cent is too coarse for one request."""
    return float(f"{value:.4g}")


def priced(alert: AnomalyEvent, finding: Finding, rates: SpendRates,
           event_cost: float) -> AnomalyEvent:
    """The alert of ``finding`` with its estimated cost, in its fields and its sentence
    (an alert about something else, such as a noisy identity's summary, is unchanged)."""
    cost = alert_cost(finding, rates, event_cost) if alert.feature == finding.feature else None
    if cost is None:
        return alert
    return alert.model_copy(update={"observed_cost": cost.observed,
                                    "expected_cost": cost.expected,
                                    "explanation": with_cost(finding, cost)})


def with_cost(finding: Finding, cost: AlertCost) -> str:
    """The finding's explanation, its cost said after it when it is worth saying."""
    if cost.observed < MIN_DOLLARS_SAID:
        return finding.explanation
    counted = finding.feature in REQUEST_FEATURES
    return f"{finding.explanation} {cost.sentence(counted)}"
