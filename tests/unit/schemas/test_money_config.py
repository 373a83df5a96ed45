"""The price table and budgets in the configuration: prices, patterns, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenradar.schemas import DetectorConfig
from tokenradar.schemas.config_file import ConfigFileError, parse_config
from tokenradar.schemas.money import ModelPrice, PriceTable


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigFileError) as error:
        parse_config(text, Path("money.toml"))
    return error.value.problems


def test_a_request_costs_its_fresh_input_cache_reads_and_output() -> None:
    price = ModelPrice(input=3.0, output=15.0, cache_read=0.3)
    # 10,000 input of which 6,000 cached, 1,000 output.
    assert price.cost(10_000, 1_000, 6_000) == pytest.approx(
        (4_000 * 3.0 + 6_000 * 0.3 + 1_000 * 15.0) / 1e6)
    assert ModelPrice(input=2.0, output=8.0).cost(1_000, 0, 1_000) == pytest.approx(0.002)


def test_an_exact_name_wins_over_a_pattern_and_unknown_models_take_the_default() -> None:
    table = PriceTable(models={"gpt-*": ModelPrice(input=1.0, output=2.0),
                               "gpt-5": ModelPrice(input=1.25, output=10.0)})
    assert table.price_for("gpt-5") == (ModelPrice(input=1.25, output=10.0), True)
    assert table.price_for("gpt-4.1")[0].input == 1.0
    assert table.price_for("mistral-large") == (table.default, False)


@pytest.mark.parametrize(("text", "expected"), [
    ("[prices.models.gpt-5]\ninput = -1.0\noutput = 10.0\n",
     "line 2, key 'prices.models.gpt-5.input': Input should be greater than or equal to 0"),
    ("[prices.models.gpt-5]\ninput = 1.25\n",
     "key 'prices.models.gpt-5.output': Field required"),
    ("[prices.models.gpt-5]\ninput = 1.25\noutput = 10.0\ncache_read = 2.0\n",
     "cache_read (2.0) costs more than input (1.25)"),
    ("[prices.default]\ninput = 3000000.0\noutput = 15.0\n",
     "key 'prices.default.input': Input should be less than or equal to 10000"),
    ("[prices.models.gpt-5]\ninput = \"1.25\"\noutput = 10.0\n",
     "key 'prices.models.gpt-5.input': Input should be a valid number"),
    ("[budgets.teams]\npayments = 0\n",
     "line 2, key 'budgets.teams.payments': Input should be greater than 0"),
    ("[budgets]\npace_weekdays = 0\n", "key 'budgets.pace_weekdays'"),
    ("[teams.payments.budgets]\nteams = {}\n",
     "key 'teams.payments.budgets': cannot be overridden per team"),
    ("[teams.payments.prices]\ndefault = {}\n",
     "key 'teams.payments.prices': cannot be overridden per team"),
])
def test_a_bad_price_or_budget_is_named_with_its_key(text: str, expected: str) -> None:
    assert any(expected in problem for problem in _problems(text)), _problems(text)


def test_a_configuration_without_prices_or_budgets_keeps_its_version() -> None:
    # The version of the defaults before prices and budgets existed (the reference run).
    assert DetectorConfig().version == "d7a77da80f36"
    priced = DetectorConfig.model_validate(
        {"prices": {"models": {"gpt-5": {"input": 1.25, "output": 10.0}}}})
    budgeted = DetectorConfig.model_validate({"budgets": {"teams": {"apps": 100.0}}})
    assert len({DetectorConfig().version, priced.version, budgeted.version}) == 3
