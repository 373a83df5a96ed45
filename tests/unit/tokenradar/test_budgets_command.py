"""tokenradar budgets, and replay's note of models priced at the default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokenradar.cli import main
from tokenradar.lab.simulation.spend_scenario import SpendTeam, spend_scenario
from tokenradar.replay import replay_file
from tokenradar.schemas import DetectorConfig


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    scenario = spend_scenario(seed=3, teams=(
        SpendTeam("steady", people=2), SpendTeam("accelerating", people=2, accelerate_on=12)))
    folder = tmp_path_factory.mktemp("budgets")
    events, config = folder / "events.jsonl", folder / "budgets.toml"
    events.write_text("".join(json.dumps(event) + "\n" for event in scenario.events))
    config.write_text("[budgets.teams]\n" + "".join(
        f'"{team}" = {budget}\n' for team, budget in scenario.budgets.items())
        + '[budgets.users]\n"nobody" = 10.0\n')
    return events, config


def test_budgets_prints_every_budget_with_its_forecast(
        month: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    events, config = month
    assert main(["budgets", "--input", str(events), "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("budgets as of Mon 2026-11-30 (the newest event's UTC day), at the "
                        "current pace:")
    by_owner = {line.split()[0]: line for line in lines[1:]}
    assert "OVER since" in by_owner["team:accelerating"]
    assert "within budget" in by_owner["team:steady"]
    assert "too few days of spend" in by_owner["nobody"]


def test_budgets_without_budgets_says_how_to_add_them(
        month: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert main(["budgets", "--input", str(month[0]), "--config", str(empty)]) == 2
    assert "no budgets in it; add [budgets.teams]" in capsys.readouterr().err


def test_replay_notes_each_model_priced_at_the_default(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(
        {"event_id": f"e{i}", "timestamp": f"2026-11-02T09:{i:02d}:00Z", "user_id": "ana",
         "model": model, "input_tokens": 100, "output_tokens": 10}) + "\n"
        for i, model in enumerate(["o3", "gpt-5", "o3", "llama"])))
    config = DetectorConfig.model_validate(
        {"prices": {"models": {"gpt-5": {"input": 1.25, "output": 10.0}}}})
    summary = replay_file(events, tmp_path / "alerts.jsonl", config=config)
    assert summary.unpriced_models == ["o3", "llama"]
    assert summary.describe().endswith(
        "; priced at [prices.default], not in the price table: o3, llama")
