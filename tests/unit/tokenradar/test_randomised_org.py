"""Randomised organisations (the robustness matrix's): deterministic per seed, different
across seeds, honest labels, and the knobs they were drawn with honoured."""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from tokenradar.lab.robustness import shuffle_arrivals
from tokenradar.lab.simulation import (
    INCIDENT_KINDS,
    Label,
    OrganisationKnobs,
    build_organisation,
    random_organisation,
    simulate,
    write_simulation,
)
from tokenradar.lab.simulation.randomised import team_sizes
from tokenradar.schemas import parse_event

Event = dict[str, object]
SIZE = {"users": 30, "teams": 4, "days": 18, "incidents_per_kind": 1}


def _epoch(timestamp: object) -> float:
    return datetime.fromisoformat(str(timestamp)).timestamp()


@pytest.fixture(scope="module")
def organisations() -> dict[int, tuple[list[Event], list[Label]]]:
    return {seed: simulate(random_organisation(seed, **SIZE)) for seed in (4, 11)}


def test_same_seed_gives_byte_identical_files_and_another_seed_other_ones(tmp_path: Path
                                                                          ) -> None:
    outputs = []
    for name, seed in (("a", 4), ("b", 4), ("c", 10)):
        events, labels = tmp_path / f"{name}.jsonl", tmp_path / f"{name}-labels.jsonl"
        write_simulation(random_organisation(seed, **{**SIZE, "days": 10}), events, labels)
        outputs.append((events.read_bytes(), labels.read_bytes()))
    assert outputs[0] == outputs[1]
    assert outputs[0][0] != outputs[2][0]
    assert outputs[0][1] != outputs[2][1]


def test_knobs_vary_widely_across_seeds() -> None:
    knobs = [OrganisationKnobs.draw(seed) for seed in range(1, 31)]
    agents = [k.agent_people for k in knobs]
    assert min(agents) < 0.15 and max(agents) > 0.6
    assert min(k.volume_spread for k in knobs) < 0.7 < 1.4 < max(k.volume_spread for k in knobs)
    assert len({k.service_accounts for k in knobs}) >= 5
    assert len({len(k.timezones) for k in knobs}) >= 4
    missing = [k.missing_fingerprint for k in knobs]
    assert 0.0 in missing and 1.0 in missing and any(0 < m < 1 for m in missing)


def test_team_sizes_span_three_to_two_hundred() -> None:
    spreads = [team_sizes(400, 25, spread, random.Random(seed))
               for seed, spread in ((1, 0.2), (2, 1.6), (3, 1.6))]
    for sizes in spreads:
        assert sum(sizes) == 400
        assert min(sizes) >= 3 and max(sizes) <= 200
    assert max(spreads[0]) < 40  # an even organisation
    assert max(max(s) for s in spreads[1:]) > 80  # one team dwarfs the others


def test_every_event_is_contract_valid_and_in_time_order(
        organisations: dict[int, tuple[list[Event], list[Label]]]) -> None:
    for events, _ in organisations.values():
        parsed = [parse_event(json.dumps(raw).encode()) for raw in events[::3]]
        times = [e.timestamp for e in parsed]
        assert times == sorted(times)


def test_labels_match_injected_incidents(
        organisations: dict[int, tuple[list[Event], list[Label]]]) -> None:
    for seed, (events, labels) in organisations.items():
        spec = random_organisation(seed, **SIZE)
        incidents = [label for label in labels
                     if not label.benign and label.kind != "population_shift"]
        assert set(Counter(label.kind for label in incidents)) == set(INCIDENT_KINDS)
        assert len({label.user_id for label in incidents}) == len(incidents)
        warm = spec.origin + spec.warmup_days * 86_400
        by_user: dict[str, list[Event]] = defaultdict(list)
        for event in events:
            by_user[str(event["user_id"])].append(event)
        for label in incidents:
            assert warm <= _epoch(label.start) < _epoch(label.end) <= spec.end
            if label.kind in ("scripted_loop", "runaway_agent", "new_pattern", "spike"):
                inside = [e for e in by_user[label.user_id]
                          if _epoch(label.start) <= _epoch(e["timestamp"]) <= _epoch(label.end)]
                assert len(inside) >= 2, f"{label.incident_id}: no injected traffic"
            if label.kind == "creep":
                doubles = _epoch(dict(label.params)["doubles_at"])
                assert _epoch(label.start) < doubles
        shifts = [label for label in labels if label.kind == "population_shift"]
        assert all(label.members for label in shifts)
        machines = [label for label in labels if label.kind == "service_account"]
        assert len(machines) == spec.knobs.service_accounts  # type: ignore[union-attr]
        for label in machines:
            hours = {int(_epoch(e["timestamp"]) // 3600) % 24 for e in by_user[label.user_id]}
            assert len(hours) >= 20 or dict(label.params)["rhythm"] == "batch"


def test_missing_session_and_fingerprint_shares_are_honoured() -> None:
    for seed in range(1, 40):  # an organisation where some producers omit each, not all
        knobs = OrganisationKnobs.draw(seed)
        if (0.2 < knobs.missing_session < 0.6 and 0.2 < knobs.missing_fingerprint < 0.6
                and knobs.volume_median < 1.5):
            break
    people = build_organisation(random_organisation(seed, users=400, teams=10, days=2,
                                                    incidents_per_kind=0)).people
    assert statistics.mean(p.omits_session for p in people) == pytest.approx(
        knobs.missing_session, abs=0.07)
    assert statistics.mean(p.omits_fingerprint for p in people) == pytest.approx(
        knobs.missing_fingerprint, abs=0.07)
    spec = random_organisation(seed, users=40, teams=4, days=9, incidents_per_kind=1)
    organisation = build_organisation(spec)
    events, labels = simulate(spec)
    misuse = {label.user_id for label in labels if label.kind == "new_pattern"}  # no session
    omits = {p.user_id: (p.omits_session, p.omits_fingerprint) for p in organisation.people
             if p.user_id not in misuse}
    for event in events:
        if event["user_id"] in omits:
            session, fingerprint = omits[str(event["user_id"])]
            assert ("session_id" not in event) == session
            assert ("prompt_fingerprint" not in event) == fingerprint


def test_long_context_sessions_grow_by_the_previous_turn_and_read_from_cache() -> None:
    seed = next(s for s in range(1, 60) if OrganisationKnobs.draw(s).long_context_people > 0.4
                and OrganisationKnobs.draw(s).missing_session == 0.0
                and OrganisationKnobs.draw(s).cache_reporting == 1.0)
    spec = random_organisation(seed, users=20, teams=2, days=5, incidents_per_kind=0)
    events, _ = simulate(spec)
    sessions: dict[object, list[Event]] = defaultdict(list)
    for event in events:
        sessions[event.get("session_id")].append(event)
    long = [s for s in sessions.values() if len(s) >= 20
            and all(int(b["input_tokens"]) >= int(a["input_tokens"])  # type: ignore[call-overload]
                    + int(a["output_tokens"]) for a, b in zip(s, s[1:], strict=False))]  # type: ignore[call-overload]
    assert long, "no session whose input grows by each previous answer"
    later = [e for s in long for e in s[1:]]
    assert statistics.median(int(e["cache_read_tokens"]) / int(e["input_tokens"])  # type: ignore[call-overload]
                             for e in later) > 0.8


def test_shuffle_keeps_timestamps_reorders_within_the_window_and_redelivers(
        tmp_path: Path) -> None:
    source, target = tmp_path / "events.jsonl", tmp_path / "shuffled.jsonl"
    write_simulation(random_organisation(10, **{**SIZE, "days": 5}), source, None)
    written = shuffle_arrivals(source, target, 120.0, 0.05, seed=2)
    original = source.read_text().splitlines()
    shuffled = target.read_text().splitlines()
    assert written == len(shuffled)
    assert sorted(set(shuffled)) == sorted(set(original))  # nothing made up, nothing lost
    assert 0.03 < (len(shuffled) - len(original)) / len(original) < 0.07
    times = [_epoch(json.loads(line)["timestamp"]) for line in shuffled]
    assert times != sorted(times)
    latest = 0.0
    for at in times:
        assert at > latest - 120.0  # never more than the window out of order
        latest = max(latest, at)


def test_the_matrix_counts_active_user_days_as_evaluate_does(tmp_path: Path) -> None:
    from tokenradar.lab.evaluation_files import count_active_user_days
    from tokenradar.lab.robustness import _active_user_days

    events = tmp_path / "events.jsonl"
    write_simulation(random_organisation(10, **{**SIZE, "days": 5}), events, None)
    assert _active_user_days(events) == count_active_user_days(events) > 30


def test_some_organisations_draw_request_sizes_from_a_public_trace() -> None:
    from tokenradar.lab.simulation.traces import TRACES, request_sizes

    drawn = {OrganisationKnobs.draw(seed).request_sizes for seed in range(1, 30)}
    assert drawn == {"lognormal", *TRACES}
    sizes = request_sizes("azure-code")
    assert len(sizes) == 1000
    assert statistics.median(i for i, _ in sizes) == pytest.approx(1.0)
    assert max(i for i, _ in sizes) > 3 * min(i for i, _ in sizes)
    seed = next(s for s in range(1, 30) if OrganisationKnobs.draw(s).request_sizes == TRACES[0])
    people = build_organisation(random_organisation(seed, users=20, teams=2, days=2,
                                                    incidents_per_kind=0)).people
    assert all(person.size_sample is sizes for person in people)


SMALL = {"users": 60, "teams": 5, "days": 21, "incidents_per_kind": 3}
EVERY_INCIDENT_SEEDS = (44, 49, 51, 58)
"""Organisations in which a gaming incident's day was one its person drew no session on
(44, 51), or a creep fell, once no one left had a few sessions a day, on someone with
0.39 or 0.15 a day (49, 58)."""


@pytest.mark.parametrize("seed", EVERY_INCIDENT_SEEDS)
def test_every_incident_has_events_of_its_person_inside_its_window(seed: int) -> None:
    events, labels = simulate(random_organisation(seed, **SMALL))
    times: dict[str, list[float]] = defaultdict(list)
    for event in events:
        times[str(event["user_id"])].append(_epoch(event["timestamp"]))
    for label in labels:
        if label.kind in INCIDENT_KINDS:
            start, end = _epoch(label.start), _epoch(label.end)
            assert any(start <= at <= end for at in times[label.user_id]), (
                f"org {seed}, {label.incident_id} ({label.kind}): no events of "
                f"{label.user_id} from {label.start} to {label.end}")
