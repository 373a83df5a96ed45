"""Allowlist and per-team overrides: who is scored but not alerted on, and what a team
may tune for itself, checked with the key path in every error."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import EventLists
from pydantic import ValidationError

from tokenradar.detectors import ScoringEngine
from tokenradar.schemas import DetectorConfig, TokenUsageEvent

MONDAY = datetime(2026, 11, 16, 10, tzinfo=UTC)


def _loop_after_history(event_lists: EventLists, user: str) -> list[TokenUsageEvent]:
    """12 days of a person's work, then an hour of the same prompt every 30 s."""
    events = event_lists.workdays(random.Random(1), 12, user=user)
    events += [event_lists.request(20_000 + i, MONDAY + timedelta(seconds=30 * i), 2000, 400,
                                   user=user, client="cli", fingerprint="same")
               for i in range(120)]
    return events


def test_an_allowlisted_service_account_is_scored_but_never_alerted(
        event_lists: EventLists) -> None:
    config = DetectorConfig.model_validate({"allowlist": {"users": ["svc-*"]}})
    allowed = event_lists.score_people(ScoringEngine(config),
                                       _loop_after_history(event_lists, "svc-ci"))
    assert max(r.score for r in allowed) >= config.scoring.alert_threshold
    assert not [a for r in allowed for a in r.alerts]
    # The same loop by an account the pattern does not match is alerted.
    other = event_lists.score_people(ScoringEngine(config),
                                     _loop_after_history(event_lists, "ci-svc"))
    assert "scripted_loop" in {a.kind for r in other for a in r.alerts}


def _spike_kinds(event_lists: EventLists, config: DetectorConfig, team: str) -> list[str]:
    """Kinds alerted for a person of ``team`` who, after 5 days, sends one 200x request."""
    events = event_lists.workdays(random.Random(2), 5, user="ana", team=team)
    events.append(event_lists.request(99_999, events[-1].timestamp + timedelta(minutes=3),
                                      600_000, 600, user="ana", team=team))
    return [a.kind for r in event_lists.score_people(ScoringEngine(config), events)
            for a in r.alerts]


def test_a_team_override_changes_that_team_only_and_the_config_version(
        event_lists: EventLists) -> None:
    config = DetectorConfig.model_validate(
        {"teams": {"research": {"spike": {"min_ratio": 500, "min_request_ratio": 500}}}})
    assert config.version != DetectorConfig().version
    assert config.for_team("research").spike.min_request_ratio == 500
    assert config.for_team("core") is config
    assert "spike" in _spike_kinds(event_lists, config, team="core")
    assert "spike" not in _spike_kinds(event_lists, config, team="research")


@pytest.mark.parametrize(("override", "path"), [
    ({"spike": {"min_ratio": 0.5}}, "teams.research.spike.min_ratio"),
    ({"creep": {"slack": -1}}, "teams.research.creep.slack"),
    ({"gaming": {"min_input_ratoi": 3}}, "teams.research.gaming.min_input_ratoi"),
    ({"population_shift": {"min_members": 1}}, "teams.research.population_shift.min_members"),
])
def test_an_invalid_team_override_is_rejected_naming_its_key_path(
        override: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError, match=f"{path}: "):
        DetectorConfig.model_validate({"teams": {"research": override}})


@pytest.mark.parametrize("section", ["spikes", "version"])
def test_an_unknown_team_section_is_rejected(section: str) -> None:
    with pytest.raises(ValidationError, match=f"teams.research.{section}: not a detector"):
        DetectorConfig.model_validate({"teams": {"research": {section: {"enabled": False}}}})


@pytest.mark.parametrize("section", ["scoring", "severity", "allowlist", "teams"])
def test_organisation_wide_sections_cannot_be_overridden_per_team(section: str) -> None:
    with pytest.raises(ValidationError, match=f"teams.research.{section}: cannot be overridden"):
        DetectorConfig.model_validate({"teams": {"research": {section: {}}}})


def test_a_team_rate_window_override_counts_requests_in_that_window(
        event_lists: EventLists) -> None:
    config = DetectorConfig.model_validate({"teams": {"research": {"rate": {
        "window_minutes": 5}}}})
    events = event_lists.workdays(random.Random(3), 12, team="research")
    start = datetime(2026, 11, 16, 10, tzinfo=UTC)  # on a 10-minute boundary
    # 6 a minute for 10 minutes: at most 30 in any 5-minute window, below min_requests 40.
    events += [event_lists.request(50_000 + i, start + timedelta(seconds=10 * i), 800, 200,
                                   team="research", fingerprint=f"q{i}") for i in range(60)]
    alerts = [a for r in event_lists.score_people(ScoringEngine(config), events)
              for a in r.alerts if a.kind == "rate"]
    assert not alerts, alerts[0].explanation


def test_an_allowlisted_team_gets_no_population_shift_alert(event_lists: EventLists) -> None:
    def ramp(member: int, workday: int) -> float:
        return 1.0 if workday < 10 else 2.5 ** (min(workday - 9, 4) / 4)

    config = DetectorConfig.model_validate({"allowlist": {"teams": ["core"]}})
    events = event_lists.team_days(8, 26, scale=ramp)
    assert not [a for r in event_lists.score_people(ScoringEngine(config), events)
                for a in r.alerts]
