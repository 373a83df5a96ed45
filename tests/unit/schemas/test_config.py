"""DetectorConfig: defaults valid, typos rejected, bands ordered, a stable version hash."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tokenradar.schemas import DetectorConfig


def test_defaults_are_a_valid_configuration() -> None:
    config = DetectorConfig()
    assert DetectorConfig.model_validate(config.model_dump()) == config


@pytest.mark.parametrize("document", [
    {"scoring": {"cooldwn_minutes": 10}},
    {"spike": {"threshold": 3}},
    {"unknown_section": {}},
])
def test_unknown_key_is_rejected(document: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        DetectorConfig.model_validate(document)


@pytest.mark.parametrize("bands", [
    {"medium": 0.9, "high": 0.8},
    {"high": 0.99, "critical": 0.96},
])
def test_severity_bands_must_ascend(bands: dict[str, float]) -> None:
    with pytest.raises(ValidationError, match="bands must ascend"):
        DetectorConfig.model_validate({"severity": bands})


def test_equal_severity_bands_are_allowed() -> None:
    DetectorConfig.model_validate({"severity": {"medium": 0.9, "high": 0.9, "critical": 0.9}})


def test_medium_band_below_alert_threshold_is_rejected() -> None:
    with pytest.raises(ValidationError, match="alert_threshold"):
        DetectorConfig.model_validate({"scoring": {"alert_threshold": 0.8},
                                       "severity": {"medium": 0.7}})


@pytest.mark.parametrize("document", [
    {"scoring": {"alert_threshold": 1.5}},
    {"spike": {"fading_factor": 0.0}},
    {"spike": {"min_ratio": 0.5}},
    {"rate": {"window_minutes": 0}},
    {"drift": {"threshold": 0}},
])
def test_out_of_range_values_are_rejected(document: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DetectorConfig.model_validate(document)


def test_config_is_frozen() -> None:
    with pytest.raises(ValidationError):
        DetectorConfig().scoring.alert_threshold = 0.1  # type: ignore[misc]


def test_version_is_stable_for_equal_configurations() -> None:
    assert DetectorConfig().version == DetectorConfig().version
    default_ratio = DetectorConfig().spike.min_ratio
    explicit = DetectorConfig.model_validate({"spike": {"min_ratio": default_ratio}})
    assert explicit.version == DetectorConfig().version


@pytest.mark.parametrize("document", [
    {"spike": {"min_ratio": 7.5}},
    {"scoring": {"cooldown_minutes": 60}},
    {"rate": {"enabled": False}},
    {"severity": {"critical": 0.99}},
])
def test_version_changes_when_a_value_changes(document: dict[str, Any]) -> None:
    assert DetectorConfig.model_validate(document).version != DetectorConfig().version


@pytest.mark.parametrize(("score", "severity"), [
    (0.6, "low"), (0.7, "medium"), (0.849, "medium"), (0.85, "high"), (0.95, "critical"),
    (1.0, "critical"),
])
def test_severity_of_follows_the_default_bands(score: float, severity: str) -> None:
    assert DetectorConfig().severity_of(score) == severity
