"""simulate: deterministic by seed, contract-valid events, labels for every injected incident."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from statistics import median

import pytest

from schemas import TokenUsageEvent
from tokenradar.simulate import Label, SimulationSpec, simulate, write_simulation

SPEC = SimulationSpec(users=12, teams=3, days=10, seed=3)
Simulated = tuple[list[dict[str, object]], list[Label]]


@pytest.fixture(scope="module")
def simulated() -> Simulated:
    return simulate(SPEC)


def test_same_seed_gives_the_same_events_and_labels(simulated: Simulated) -> None:
    assert simulate(SPEC) == simulated


def test_another_seed_gives_other_events(simulated: Simulated) -> None:
    events, labels = simulate(SimulationSpec(users=12, teams=3, days=10, seed=4))
    assert events != simulated[0]
    assert {e["event_id"] for e in events}.isdisjoint({e["event_id"] for e in simulated[0]})


def test_events_are_contract_valid_sorted_and_unique(simulated: Simulated) -> None:
    events = [TokenUsageEvent.model_validate(raw) for raw in simulated[0]]
    assert len(events) > 1000
    assert len({e.event_id for e in events}) == len(events)
    times = [e.timestamp for e in events]
    assert times == sorted(times)
    assert {e.user_id for e in events} == {f"user-{i:04d}" for i in range(SPEC.users)}


def test_labels_cover_every_injected_incident(simulated: Simulated) -> None:
    events, labels = simulated
    assert Counter(label.kind for label in labels) == {
        "spike": SPEC.spikes, "rate": SPEC.loops, "drift": SPEC.drifts}
    assert len({label.incident_id for label in labels}) == len(labels)
    assert len({label.user_id for label in labels}) == len(labels)
    warmup_end = SPEC.start.timestamp() + SPEC.warmup_days * 86_400
    for label in labels:
        start = datetime.fromisoformat(label.start)
        end = datetime.fromisoformat(label.end)
        assert warmup_end <= start.timestamp() < end.timestamp()
        mine = [TokenUsageEvent.model_validate(e) for e in events if e["user_id"] == label.user_id]
        assert {e.team for e in mine} == {label.team}
        inside = [e for e in mine if start <= e.timestamp <= end]
        outside = [e for e in mine if not start <= e.timestamp <= end]
        assert inside, f"{label.incident_id}: no events inside the labelled window"
        if label.kind == "spike":
            assert median(e.input_tokens for e in inside) > 3 * median(
                e.input_tokens for e in outside)
        if label.kind == "rate":
            assert len(inside) >= 300  # one request every 4-6 s for 45 minutes


def test_write_simulation_writes_one_json_line_per_event(tmp_path: Path) -> None:
    spec = SimulationSpec(users=4, teams=2, days=9, seed=1)
    events_out, labels_out = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    count = write_simulation(spec, events_out, labels_out)
    lines = events_out.read_text().splitlines()
    assert count == len(lines) == len(simulate(spec)[0])
    assert len(labels_out.read_text().splitlines()) == len(simulate(spec)[1])
    assert all(json.loads(line)["event_id"] for line in lines)


@pytest.mark.xfail(strict=True, raises=subprocess.TimeoutExpired, reason=(
    "bug: simulate._inject loops forever when every candidate incident day is a weekend "
    "(days=7 or 8 with the default warmup_days=5)"))
def test_short_simulation_finishes(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "tokenradar", "simulate", "--days", "7",
                    "--users", "10", "--out", str(tmp_path / "e.jsonl")],
                   check=True, capture_output=True, timeout=5)
