"""The simulated organisation: realistic habits, and incidents where their labels say."""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from tokenradar.lab.simulation import (
    INCIDENT_KINDS,
    Label,
    SimulationSpec,
    build_organisation,
    simulate,
    write_simulation,
)
from tokenradar.schemas import parse_event

SPEC = SimulationSpec(users=80, teams=6, days=24, seed=11, incidents_per_kind=3,
                      shifted_teams=1, vacation_share=0.05)
Event = dict[str, object]


@pytest.fixture(scope="module")
def simulated() -> tuple[list[Event], list[Label]]:
    return simulate(SPEC)


@pytest.fixture(scope="module")
def by_user(simulated: tuple[list[Event], list[Label]]) -> dict[str, list[Event]]:
    users: dict[str, list[Event]] = defaultdict(list)
    for event in simulated[0]:
        users[str(event["user_id"])].append(event)
    return users


def _epoch(timestamp: object) -> float:
    return datetime.fromisoformat(str(timestamp)).timestamp()


def _inside(events: list[Event], label: Label) -> list[Event]:
    start, end = _epoch(label.start), _epoch(label.end)
    return [e for e in events if start <= _epoch(e["timestamp"]) <= end]


def _labels(labels: list[Label], kind: str) -> list[Label]:
    found = [label for label in labels if label.kind == kind]
    assert found, f"no {kind} label"
    return found


def _tokens(events: list[Event]) -> int:
    return sum(int(e["input_tokens"]) + int(e["output_tokens"]) for e in events)  # type: ignore[call-overload]


def test_same_seed_gives_byte_identical_files_and_another_seed_other_ones(tmp_path: Path
                                                                          ) -> None:
    spec = SimulationSpec(users=30, teams=3, days=10, seed=5, incidents_per_kind=1)
    outputs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        events, labels = tmp_path / f"{name}.jsonl", tmp_path / f"{name}-labels.jsonl"
        write_simulation(SimulationSpec(**{**vars(spec), "seed": seed}), events, labels)
        outputs.append((events.read_bytes(), labels.read_bytes()))
    assert outputs[0] == outputs[1]
    assert outputs[0][0] != outputs[2][0]


def test_every_event_is_contract_valid_and_in_time_order(simulated: tuple[list[Event],
                                                                           list[Label]]) -> None:
    events = [parse_event(json.dumps(raw).encode()) for raw in simulated[0]]
    assert len(events) > 10_000
    times = [e.timestamp for e in events]
    assert times == sorted(times)
    assert all(e.cost_usd is not None and e.cost_usd > 0 for e in events)


def test_people_are_quiet_at_night_and_on_weekends(by_user: dict[str, list[Event]],
                                                   simulated: tuple[list[Event], list[Label]]
                                                   ) -> None:
    labelled = {label.user_id for label in simulated[1] if not label.benign}
    people = [p for p in build_organisation(SPEC).people
              if not p.night_owl and p.user_id not in labelled]
    off, total = 0, 0
    for person in people:
        for event in by_user[person.user_id]:
            at = _epoch(event["timestamp"])
            hour = person.local_hour(at)
            off += person.weekday(person.local_day(at)) >= 5 or not 6 <= hour < 21
            total += 1
    assert total > 10_000
    assert off / total < 0.05


def test_some_people_legitimately_use_far_more_than_others(by_user: dict[str, list[Event]]
                                                           ) -> None:
    volumes = sorted(_tokens(events) for user, events in by_user.items()
                     if user.startswith("user-"))
    p10, p99 = volumes[len(volumes) // 10], volumes[int(len(volumes) * 0.99)]
    assert p99 >= 30 * p10


def test_each_incident_kind_is_labelled_after_the_warmup_on_distinct_people(
        simulated: tuple[list[Event], list[Label]], by_user: dict[str, list[Event]]) -> None:
    labels = simulated[1]
    incidents = [label for label in labels
                 if not label.benign and label.kind != "population_shift"]
    assert Counter(label.kind for label in incidents) == dict.fromkeys(INCIDENT_KINDS, 3)
    assert len({label.user_id for label in incidents}) == len(incidents)
    shifted = {m for label in _labels(labels, "population_shift") for m in label.members}
    warm = SPEC.origin + SPEC.warmup_days * 86_400
    for label in incidents:
        assert label.user_id not in shifted
        assert warm <= _epoch(label.start) < _epoch(label.end) <= SPEC.end
        assert _inside(by_user[label.user_id], label), f"{label.incident_id}: no events inside"


def test_scripted_loop_is_machine_regular_inside_its_window(
        simulated: tuple[list[Event], list[Label]], by_user: dict[str, list[Event]]) -> None:
    for label in _labels(simulated[1], "scripted_loop"):
        inside = _inside(by_user[label.user_id], label)
        repeated = {f for f, n in Counter(e["prompt_fingerprint"] for e in inside).items()
                    if n >= 10}
        times = [_epoch(e["timestamp"]) for e in inside if e["prompt_fingerprint"] in repeated]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert len(gaps) >= 50
        assert statistics.pstdev(gaps) / statistics.mean(gaps) < 0.05
        assert {e["client"] for e in inside if e["prompt_fingerprint"] in repeated} <= {
            "cli", "agent"}


def test_gaming_pads_prompts_with_a_few_repeated_fingerprints(
        simulated: tuple[list[Event], list[Label]], by_user: dict[str, list[Event]]) -> None:
    for label in _labels(simulated[1], "gaming"):
        events = by_user[label.user_id]
        before = [e for e in events if _epoch(e["timestamp"]) < _epoch(label.start)]
        inside = _inside(events, label)

        def ratio(sample: list[Event]) -> float:
            return statistics.median(int(e["input_tokens"]) / max(1, int(e["output_tokens"]))  # type: ignore[call-overload]
                                     for e in sample)

        assert ratio(inside) >= 2 * ratio(before)
        top = Counter(e["prompt_fingerprint"] for e in inside).most_common(6)
        assert sum(n for _, n in top) >= 0.5 * len(inside)


def test_new_pattern_uses_a_model_and_client_the_person_never_used(
        simulated: tuple[list[Event], list[Label]], by_user: dict[str, list[Event]]) -> None:
    for label in _labels(simulated[1], "new_pattern"):
        events = by_user[label.user_id]
        before = [e for e in events if _epoch(e["timestamp"]) < _epoch(label.start)]
        burst = [e for e in _inside(events, label) if e["client"] in ("api", "sdk")]
        assert 20 <= len(burst) <= 80
        assert {e["model"] for e in burst}.isdisjoint({e["model"] for e in before})
        assert {e["client"] for e in burst}.isdisjoint({e["client"] for e in before})


def test_runaway_agent_runs_for_hours_with_growing_context(
        simulated: tuple[list[Event], list[Label]], by_user: dict[str, list[Event]]) -> None:
    for label in _labels(simulated[1], "runaway_agent"):
        agent = [e for e in _inside(by_user[label.user_id], label) if e["client"] == "agent"]
        hours = (_epoch(label.end) - _epoch(label.start)) / 3600
        assert len(agent) >= 60 * hours  # a request at least every minute
        sessions: dict[object, list[int]] = defaultdict(list)
        for event in agent:
            sessions[event["session_id"]].append(int(event["input_tokens"]))  # type: ignore[call-overload]
        longest = max(sessions.values(), key=len)
        assert longest[-1] > 2 * longest[0]


def test_spike_hour_carries_several_times_the_usual_hourly_tokens(
        simulated: tuple[list[Event], list[Label]], by_user: dict[str, list[Event]]) -> None:
    for label in _labels(simulated[1], "spike"):
        events = by_user[label.user_id]
        hourly: Counter[int] = Counter()
        for event in events:
            if _epoch(event["timestamp"]) < _epoch(label.start):
                hourly[int(_epoch(event["timestamp"]) // 3600)] += _tokens([event])
        usual = statistics.median(hourly.values())
        assert _tokens(_inside(events, label)) >= 3 * usual


def test_creep_raises_the_level_until_the_run_ends() -> None:
    # One person's week is noisy (busy days, long sessions): look at several at once.
    spec = SimulationSpec(users=60, teams=4, days=28, seed=3, incident_kinds=("creep",),
                          incidents_per_kind=8, shifted_teams=0)
    events, labels = simulate(spec)
    ratios = []
    for label in _labels(labels, "creep"):
        assert _epoch(label.end) == spec.end
        mine = [e for e in events if e["user_id"] == label.user_id]
        start = _epoch(label.start)
        early = _tokens([e for e in mine if start - 7 * 86_400 <= _epoch(e["timestamp"]) < start])
        late = _tokens([e for e in mine if _epoch(e["timestamp"]) >= spec.end - 7 * 86_400])
        ratios.append(late / early)
    assert len(ratios) == 8
    assert statistics.median(ratios) >= 1.2


def test_a_shifted_team_ends_the_ramp_at_twice_its_volume(
        simulated: tuple[list[Event], list[Label]], by_user: dict[str, list[Event]]) -> None:
    for label in _labels(simulated[1], "population_shift"):
        # A shift is expected to be reported, once, for the team: not benign.
        assert label.user_id == f"team:{label.team}" and not label.benign and label.members
        events = [e for member in label.members for e in by_user[member]]
        ramp_end = _epoch(label.end) - 2 * 86_400
        before = [e for e in events if _epoch(e["timestamp"]) < _epoch(label.start)]
        after = [e for e in events if _epoch(e["timestamp"]) >= ramp_end]

        def per_workday(sample: list[Event]) -> float:
            days = {str(e["timestamp"])[:10] for e in sample
                    if datetime.fromisoformat(str(e["timestamp"])).weekday() < 5}
            return _tokens(sample) / len(days)

        assert per_workday(after) >= 1.8 * per_workday(before)


def test_vacationers_are_silent_while_away_and_come_back(
        simulated: tuple[list[Event], list[Label]], by_user: dict[str, list[Event]]) -> None:
    for label in _labels(simulated[1], "vacation_return"):
        away_from, back = _epoch(dict(label.params)["away_from"]), _epoch(label.start)
        times = [_epoch(e["timestamp"]) for e in by_user[label.user_id]]
        assert back - away_from == 14 * 86_400
        assert not [t for t in times if away_from <= t < back]
        assert [t for t in times if t < away_from] and [t for t in times if t >= back]


def test_new_joiners_start_at_their_label_with_no_history(
        simulated: tuple[list[Event], list[Label]], by_user: dict[str, list[Event]]) -> None:
    for label in _labels(simulated[1], "new_joiner"):
        assert by_user[label.user_id][0]["timestamp"] == label.start


def test_nightly_job_repeats_the_same_prompts_every_night(by_user: dict[str, list[Event]]
                                                          ) -> None:
    nights: dict[str, list[object]] = defaultdict(list)
    for event in by_user["svc-nightly-eval"]:
        nights[str(event["timestamp"])[:10]].append(event["prompt_fingerprint"])
        assert event["client"] == "agent" and str(event["timestamp"])[11:13] == "01"
    assert len(nights) == SPEC.days
    assert len({tuple(prompts) for prompts in nights.values()}) == 1


def test_redelivered_duplicates_only_when_asked() -> None:
    spec = SimulationSpec(users=20, teams=2, days=9, seed=2, duplicate_share=0.01)
    events, _ = simulate(spec)
    repeated = Counter(e["event_id"] for e in events)
    assert 0 < sum(n - 1 for n in repeated.values()) < 0.03 * len(events)
    plain, _ = simulate(SimulationSpec(**{**vars(spec), "duplicate_share": 0.0}))
    assert len({e["event_id"] for e in plain}) == len(plain)


def test_tiny_and_short_organisations_still_simulate() -> None:
    events, labels = simulate(SimulationSpec(users=3, teams=1, days=7, seed=1))
    assert events and all(label.benign for label in labels)  # no room for incidents


def test_a_light_user_works_on_each_day_an_incident_needs() -> None:
    spec = SimulationSpec(users=40, teams=3, days=14, seed=5)
    person = build_organisation(spec).people[0]
    person.requests_per_hour, person.changes, person.away = 0.05, [], None  # ~0.05 sessions a day
    person.joined_day, person.on_call_nights = None, frozenset()
    days = [day for day in range(7, 14) if person.weekday(day) < 5]
    person.working_days.update(days)
    for day in days:
        start, end = person.work_window(day)
        times = [ms / 1000 for ms, _ in person.events_for_day(day)]
        assert times and all(start - 3600 <= at <= end + 3 * 3600 for at in times), day
