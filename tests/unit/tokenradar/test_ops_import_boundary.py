"""The alert commands stay light: their pure parts load no Kafka, and none loads the lab
(simulator, evaluation, report) or Faust."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

LAB_AND_FAUST = ["tokenradar.lab", "faust"]


def _loaded(modules: list[str], watched: list[str]) -> list[str]:
    probe = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted(n for n in {watched!r} if n in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    return list(json.loads(done.stdout))


def test_alert_feed_and_delivery_load_no_kafka() -> None:
    assert _loaded(["tokenradar.alert_feed", "tokenradar.alert_delivery"],
                   ["kafka", "aiokafka", "faust"]) == []


@pytest.mark.parametrize("module", ["tokenradar.alerts_tail", "tokenradar.bridge"])
def test_alert_commands_load_neither_the_lab_nor_faust(module: str) -> None:
    assert _loaded([module], LAB_AND_FAUST) == []
