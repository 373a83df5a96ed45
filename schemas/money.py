"""Money in the configuration: the price table and the monthly budgets.

Prices turn token counts into an estimated cost (an event's own ``cost_usd`` wins when
the producer sends it); budgets are what ``budget_burn`` forecasts spend against.
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_PRICE = 10_000.0
"""USD per million tokens: 10x the dearest model sold today. Above it, a price is
almost surely per thousand tokens or in cents."""
TOKENS_PER_PRICE = 1_000_000
Dollars = Annotated[float, Field(ge=0.0, le=MAX_PRICE, allow_inf_nan=False)]
Budget = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ModelPrice(_Strict):
    """USD per million tokens of one model."""

    input: Dollars = Field(description="Input (prompt) tokens not read from the cache.")
    output: Dollars
    cache_read: Dollars | None = Field(
        None, description="Input tokens read from the prompt cache; default: the input price.")

    @model_validator(mode="after")
    def _cache_not_dearer(self) -> Self:
        if self.cache_read is not None and self.cache_read > self.input:
            raise ValueError(f"cache_read ({self.cache_read}) costs more than input "
                             f"({self.input}): a cache read is a discounted input token, "
                             "check the columns")
        return self

    def cost(self, input_tokens: int, output_tokens: int, cache_read_tokens: int) -> float:
        """USD of one request; ``input_tokens`` includes the cache reads, as events report."""
        cache_read = self.input if self.cache_read is None else self.cache_read
        cache_reads = min(cache_read_tokens, input_tokens)
        return ((input_tokens - cache_reads) * self.input + cache_reads * cache_read
                + output_tokens * self.output) / TOKENS_PER_PRICE


class PriceTable(_Strict):
    """Prices per model; ``default`` prices any model the table does not name.

    Examples
    --------
    >>> table = PriceTable(models={"gpt-5": ModelPrice(input=1.25, output=10.0),
    ...                            "claude-*": ModelPrice(input=3.0, output=15.0,
    ...                                                   cache_read=0.3)})
    >>> table.price_for("claude-sonnet-4-5")
    (ModelPrice(input=3.0, output=15.0, cache_read=0.3), True)
    >>> round(table.price_for("gpt-5")[0].cost(10_000, 1_000, 0), 6)
    0.0225
    >>> table.price_for("llama-3.1-70b")[1]
    False
    """

    default: ModelPrice = Field(
        ModelPrice(input=3.0, output=15.0, cache_read=0.3),
        description="Prices of a model not in ``models`` (a warning names each one, once).")
    models: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description="Model name (as events report it) or shell pattern such as 'claude-*' "
        "-> its prices. An exact name wins over a pattern; patterns match in file order.")

    @model_validator(mode="after")
    def _names_not_blank(self) -> Self:
        blank = [repr(name) for name in self.models if not name.strip()]
        if blank:
            raise ValueError(f"model name {blank[0]} is blank: name the model as events "
                             "report it, e.g. \"gpt-5\"")
        return self

    def price_for(self, model: str) -> tuple[ModelPrice, bool]:
        """The model's prices, and whether the table names it (False: the default)."""
        price = self.models.get(model)
        if price is not None:
            return price, True
        for pattern, price in self.models.items():
            if fnmatch.fnmatchcase(model, pattern):
                return price, True
        return self.default, False


class BudgetsConfig(_Strict):
    """Monthly budgets (USD, UTC calendar months) and how spend is forecast against them."""

    teams: dict[str, Budget] = Field(
        default_factory=dict, description="Team -> its monthly budget in USD.")
    users: dict[str, Budget] = Field(
        default_factory=dict, description="User id -> their own monthly budget in USD.")
    pace_weekdays: Annotated[int, Field(ge=1, le=20)] = Field(
        5, description="The mean spend of the last this many complete weekdays is the "
        "weekday pace (fewer: quicker to see an acceleration, and to be fooled by a day).")
    pace_weekend_days: Annotated[int, Field(ge=1, le=8)] = Field(
        4, description="The mean spend of the last this many weekend days is the weekend "
        "pace. A budget is forecast once its history holds pace_weekdays weekdays and a "
        "weekend day.")

    @property
    def any(self) -> bool:
        return bool(self.teams or self.users)
