"""The engine's stages, each alone: dedupe, context, detectors, calibration, incidents,
alerts; and the registry the detectors are built from."""

from __future__ import annotations

import random
from datetime import timedelta

import msgspec
import pytest
from conftest import EventLists, FixedScore

from tokenradar.detectors.base import Finding, TeamDetector
from tokenradar.detectors.engine import (
    detector_slot,
    is_duplicate,
    learn_team,
    record_day_maxima,
    run_detectors,
)
from tokenradar.detectors.incidents import IncidentDesk
from tokenradar.detectors.observation import observe
from tokenradar.detectors.population_shift import PopulationShiftDetector
from tokenradar.detectors.precedence import folded, held_back, rank
from tokenradar.detectors.registry import build_detectors, detector_class
from tokenradar.detectors.state import Incident, UserState
from tokenradar.detectors.team import TeamState
from tokenradar.schemas import AnomalyEvent, DetectorConfig
from tokenradar.schemas.kinds import (
    GAMING,
    POPULATION_SHIFT,
    SPIKE,
    KindDeclaration,
    declare,
    declared_kinds,
)
from tokenradar.schemas.sections import SpikeConfig


def test_dedupe_stage_recognises_a_redelivered_event(event_lists: EventLists) -> None:
    state, config = UserState(user_id="ana"), DetectorConfig()
    event = event_lists.event(1, event_lists.start, 1000)
    assert not is_duplicate(state, event, config)
    assert is_duplicate(state, event, config)


def test_context_stage_counts_the_rate_window_it_is_given(event_lists: EventLists) -> None:
    state = UserState(user_id="ana")
    events = [event_lists.event(i, event_lists.start + timedelta(minutes=3 * i), 1000)
              for i in range(5)]
    short = [observe(state, event, None, window_seconds=300.0) for event in events][-1]
    state = UserState(user_id="ana")
    long = [observe(state, event, None, window_seconds=3600.0) for event in events][-1]
    assert (short.window_requests, long.window_requests) == (1, 5)
    assert state.events == 5 and list(state.recent_ids)[-1] == events[-1].event_id


def test_detectors_stage_gives_each_detector_its_own_slot(event_lists: EventLists) -> None:
    state = UserState(user_id="ana")
    observation = observe(state, event_lists.event(1, event_lists.start, 1000), None, 600.0)
    detectors = [FixedScore(0.3)]
    assert [(d.name, f.score) for d, f in run_detectors(detectors, state, observation)
            if f is not None] == [("fixed", 0.3)]
    assert detector_slot(state, detectors[0]) is state.slots["fixed"]


def test_a_stored_slot_is_restored_once_it_is_needed() -> None:
    (spike,) = [d for d in build_detectors(DetectorConfig()).users if d.name == "spike"]
    stored = msgspec.msgpack.decode(msgspec.msgpack.encode(spike.new_slot()))  # plain values
    state = UserState(user_id="ana", slots={"spike": stored})
    slot = detector_slot(state, spike)
    assert isinstance(slot, spike.slot_type) and state.slots["spike"] is slot


def test_calibration_stage_adds_a_members_day_maximum_when_the_day_closes(
        event_lists: EventLists) -> None:
    state, team = UserState(user_id="ana"), TeamState(team="core")
    day_one = observe(state, event_lists.event(1, event_lists.start, 1000), team, 600.0)
    record_day_maxima(state, team, day_one, [(FixedScore(0.4), FixedScore(0.4).observe(
        None, day_one))])
    assert state.day_maxima == {"fixed": 0.4}
    next_day = event_lists.event(2, event_lists.start + timedelta(days=1), 1000)
    day_two = observe(state, next_day, team, 600.0)
    assert day_two.closed_day is not None
    record_day_maxima(state, team, day_two, [(FixedScore(0.1), None)])
    assert state.day_maxima == {} and team.maxima != TeamState(team="x").maxima


def test_team_learning_pools_a_member(event_lists: EventLists) -> None:
    state, team = UserState(user_id="ana"), TeamState(team="core")
    observation = observe(state, event_lists.event(1, event_lists.start, 999), team, 600.0)
    learn_team(team, state, observation)
    assert team.per_request.count == 1 and team.tools


def test_incidents_fold_the_signals_of_an_open_behaviour_and_hold_back_for_a_forming_one(
        ) -> None:
    agent_night = {"runaway_agent": Incident("a1", until=100.0)}
    assert folded("spike", agent_night, 50.0) and folded("gaming", agent_night, 50.0)
    assert not folded("runaway_agent", agent_night, 50.0)  # its own incident escalates
    assert not folded("spike", agent_night, 100.0)
    assert held_back("spike", forming=rank(GAMING.name))
    assert not held_back("scripted_loop", forming=rank(GAMING.name))
    assert rank("not-a-kind") == 0


def test_alerts_stage_opens_an_incident_escalates_it_and_quiets_it(
        event_lists: EventLists) -> None:
    desk, state = IncidentDesk(DetectorConfig()), UserState(user_id="ana", team="core")
    medium = FixedScore(0.75).observe(None, None)  # type: ignore[arg-type]
    critical = FixedScore(0.99).observe(None, None)  # type: ignore[arg-type]
    assert medium is not None and critical is not None

    def alert(number: int, minutes: float, finding: Finding) -> AnomalyEvent | None:
        event = event_lists.event(number, event_lists.start + timedelta(minutes=minutes), 1000)
        return desk.user_alert(state, "spike", "spike", 600.0, finding, event,
                               event.epoch_seconds, event.timestamp)

    first, same, worse = alert(1, 0, medium), alert(2, 1, medium), alert(3, 2, critical)
    assert first is not None and first.severity == "medium" and same is None
    assert worse is not None and (worse.alert_id, worse.severity) == (first.alert_id, "critical")
    after = alert(4, 30, medium)  # the cooldown (10 min, from the last finding) has passed
    assert after is not None and after.alert_id != first.alert_id


def test_team_alert_is_the_teams_own_and_quiet_while_open(event_lists: EventLists) -> None:
    desk, team = IncidentDesk(DetectorConfig()), TeamState(team="core")
    event = event_lists.event(1, event_lists.start, 1000)
    finding = FixedScore(0.8).observe(None, None)  # type: ignore[arg-type]
    assert finding is not None
    alert = desk.team_alert(team, "population_shift", 600.0, finding, event,
                            event.epoch_seconds, event.timestamp)
    assert alert is not None and alert.user_id == "team:core"
    assert desk.team_alert(team, "population_shift", 600.0, finding, event,
                           event.epoch_seconds + 1, event.timestamp) is None


def test_population_shift_is_a_declared_team_detector() -> None:
    built = build_detectors(DetectorConfig())
    assert POPULATION_SHIFT.scope == "team"
    assert [type(d) for d in built.teams] == [PopulationShiftDetector]
    assert all(isinstance(d, TeamDetector) for d in built.teams)
    assert "population_shift" not in {d.name for d in built.users}
    # switched off, it still learns the team's movement, which members read
    quiet = DetectorConfig.model_validate({"population_shift": {"enabled": False}})
    assert [d.name for d in build_detectors(quiet).teams] == ["population_shift"]


def test_every_declared_detector_is_built_in_declaration_order() -> None:
    built = build_detectors(DetectorConfig())
    names = [d.name for d in built.users + built.teams]  # type: ignore[operator]
    assert names == [kind.name for kind in declared_kinds() if kind.detector]
    disabled = DetectorConfig.model_validate({"drift": {"enabled": False}})
    assert "drift" not in [d.name for d in build_detectors(disabled).users]


def test_a_declaration_naming_the_wrong_class_is_refused() -> None:
    wrong = KindDeclaration("wrong", "x", SpikeConfig, "tokenradar.detectors.spike:SpikeDetector")
    with pytest.raises(TypeError, match="declares 'spike'"):
        detector_class(wrong)
    with pytest.raises(ValueError, match="already declared"):
        declare(KindDeclaration("spike", "another", SpikeConfig, SPIKE.detector))
    with pytest.raises(ValueError, match="configuration's own key"):
        declare(KindDeclaration("scoring", "x", SpikeConfig, SPIKE.detector))


def test_the_engine_runs_the_stages_in_order(event_lists: EventLists) -> None:
    """Whole engine over a random history: a duplicate scores nothing, and alerts only
    come from detectors that found something above threshold."""
    from tokenradar.detectors import ScoringEngine

    engine = ScoringEngine(DetectorConfig())
    events = event_lists.steady(random.Random(5), hours=40)
    results = event_lists.score_all(engine, events + events[:3])
    assert [r.duplicate for r in results[-3:]] == [True] * 3
    assert all(a.score >= 0.6 for r in results for a in r.alerts)
