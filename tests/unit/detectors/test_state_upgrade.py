"""State across upgrades: what release ae4055c stored loads, and scoring goes on exactly
as the uninterrupted run; today's records keep the layout their schema version names.

``fixtures/state_ae4055c/`` holds what ae4055c stored for two teams of the reference run
part-way through, and what that run scored next (``make_fixture.py`` wrote it, with
ae4055c). ``fixtures/state_layouts.json`` holds each stored record's layout under its
schema version; add a new version's layouts (run this file:
``.venv/bin/python tests/unit/detectors/test_state_upgrade.py``) only together with that
new schema version. ``fixtures/state_e282a99/`` holds the same
states as release e282a99 stored them, before the fields no longer read were dropped
(``store_as_e282a99.py`` wrote them, with e282a99).
"""

from __future__ import annotations

import base64
import gzip
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tokenradar.detectors import ScoringEngine, TeamState, UserState, legacy, records, verdicts
from tokenradar.detectors import state as user_state
from tokenradar.detectors import team as team_state
from tokenradar.detectors.creep import CreepSlot, CreepTrack
from tokenradar.detectors.engine import detector_slot
from tokenradar.detectors.records import Record
from tokenradar.detectors.reorder import CODEC_VERSION as BUFFER_VERSION
from tokenradar.detectors.reorder import ReorderBuffer, StoredBuffer
from tokenradar.schemas import AnomalyEvent, DetectorConfig, parse_event

FIXTURES = Path(__file__).parent / "fixtures"
RELEASE = FIXTURES / "state_ae4055c"
LAYOUTS = FIXTURES / "state_layouts.json"
TEAMS = ["identity", "platform"]


def _fixture(team: str) -> dict[str, Any]:
    with gzip.open(RELEASE / f"{team}.json.gz", "rt", encoding="utf-8") as source:
        document: dict[str, Any] = json.load(source)
    assert document["release"] == "ae4055c"
    return document


def _blob(text: str) -> bytes:
    return base64.b64decode(text)


def _without_cost(alert: AnomalyEvent) -> dict[str, Any]:
    """The alert as ae4055c wrote it: alerts carry no estimated cost before prices; nor
    the configuration's version (nor the alert id made with it), which its defaults set."""
    explanation = alert.explanation
    if alert.observed_cost is not None:
        explanation = explanation.rsplit(" About $", 1)[0]
    return _versionless(alert.model_copy(update={
        "observed_cost": None, "expected_cost": None, "explanation": explanation
    }).model_dump_json())


def _versionless(alert: str) -> dict[str, Any]:
    """An alert's fields but its ``config_version`` and ``alert_id``."""
    fields: dict[str, Any] = json.loads(alert)
    return {key: value for key, value in fields.items()
            if key not in ("config_version", "alert_id")}


def _score_later(fixture: dict[str, Any], written_back: bool
                 ) -> list[tuple[float, list[dict[str, Any]]]]:
    """Today's score and alerts of each later event, from the state ae4055c stored;
    ``written_back``: every state is also stored in today's form and read back after each
    event, as the worker does."""
    engine = ScoringEngine(DetectorConfig())
    users = {user: UserState.from_bytes(_blob(blob))
             for user, blob in fixture["stored"]["users"].items()}
    team_state = TeamState.from_bytes(_blob(fixture["stored"]["team"]))
    assert users and len(fixture["later"]) > 100
    scored = []
    for item in fixture["later"]:
        event = parse_event(item["event"].encode())
        user = users.get(event.user_id)
        if user is None:
            user = users[event.user_id] = engine.new_state(event.user_id)
        result = engine.score_event(user, event, event.timestamp, team_state=team_state)
        scored.append((result.score, [_without_cost(alert) for alert in result.alerts]))
        if written_back:
            users[event.user_id] = UserState.from_bytes(user.to_bytes())
            team_state = TeamState.from_bytes(team_state.to_bytes())
    return scored


CHANGED_SINCE = {"new_pattern"}
"""Kinds whose evidence changed after ae4055c (issue 13): their alerts here must still
find the same incidents (users), not match ae4055c's byte for byte."""
NOT_CONTINUED = {"population_shift"}
"""Kinds judged since issue 13 on what ae4055c did not keep (a team's members' usual
working days): a team stored then starts learning them when it loads, so its shift is
not the one the uninterrupted run found."""


@pytest.mark.parametrize("team", TEAMS)
def test_state_stored_by_ae4055c_scores_on_as_the_uninterrupted_run(team: str) -> None:
    """Each later event gets the alerts (byte for byte) the run that never stopped gave
    it, but those of kinds changed since (CHANGED_SINCE), which alert the same users, and
    those not continued (NOT_CONTINUED); and
    the same score whether the states stay decoded or are stored and read back after
    each event."""
    fixture = _fixture(team)
    loaded = _score_later(fixture, written_back=False)
    assert _score_later(fixture, written_back=True) == loaded
    expected = [[_versionless(alert) for alert in item["alerts"]] for item in fixture["later"]]
    assert any(expected)

    def kept(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [alert for alert in alerts
                if alert["kind"] not in CHANGED_SINCE | NOT_CONTINUED]

    def changed(runs: list[list[dict[str, Any]]]) -> set[tuple[str, str]]:
        return {(alert["kind"], alert["user_id"]) for alerts in runs for alert in alerts
                if alert["kind"] in CHANGED_SINCE}

    assert [kept(alerts) for _, alerts in loaded] == [kept(alerts) for alerts in expected]
    assert changed([alerts for _, alerts in loaded]) == changed(expected)


@pytest.mark.parametrize("team", TEAMS)
def test_state_stored_by_ae4055c_is_smaller_in_todays_form(team: str) -> None:
    stored = _fixture(team)["stored"]
    for blob in [*stored["users"].values(), stored["team"]]:
        old = _blob(blob)
        decode = TeamState.from_bytes if blob is stored["team"] else UserState.from_bytes
        assert len(decode(old).to_bytes()) < len(old)


def test_reorder_buffer_stored_by_ae4055c_releases_its_events() -> None:
    fixture = _fixture("identity")
    window = DetectorConfig().scoring.reorder_seconds
    old = ReorderBuffer.from_bytes(_blob(fixture["stored"]["reorder_buffer"]), window)
    assert len(old) > 0
    new = ReorderBuffer.from_bytes(old.to_bytes(), window)
    assert (new.newest, new.frontier) == (old.newest, old.frontier)
    released = [item.event.event_id for item in old.flush()]
    assert [item.event.event_id for item in new.flush()] == released
    later = [parse_event(item["event"].encode()).event_id for item in fixture["later"][:3]]
    assert set(released) <= set(later)


def _stored_by_e282a99(team: str) -> dict[str, Any]:
    """The fixture's states of ae4055c as release e282a99 stored them (user state schema
    version 4, team state version 2: with the fields no longer read)."""
    with gzip.open(FIXTURES / "state_e282a99" / f"{team}.json.gz", "rt") as source:
        document: dict[str, Any] = json.load(source)
    assert document["release"] == "e282a99"
    return document


@pytest.mark.parametrize("team", TEAMS)
def test_state_stored_by_e282a99_loads_as_the_same_state_today(team: str) -> None:
    """A state of the versions before the unread fields went loads into exactly the
    record the same state stored by ae4055c loads into: byte for byte once stored."""
    older, release = _stored_by_e282a99(team), _fixture(team)["stored"]
    assert {_version(blob) for blob in older["users"].values()} == {4}
    for user, blob in older["users"].items():
        today = _restored(UserState.from_bytes(_blob(blob))).to_bytes()
        assert today == _restored(UserState.from_bytes(_blob(release["users"][user]))).to_bytes()
        assert len(today) < len(_blob(blob))
    assert _version(older["team"]) == 2
    today = TeamState.from_bytes(_blob(older["team"])).to_bytes()
    assert today == TeamState.from_bytes(_blob(release["team"])).to_bytes()
    assert len(today) < len(_blob(older["team"]))


def _restored(state: UserState) -> UserState:
    """The state with every slot read as its detector's record: a slot kept as stored
    (plain values) has only the fields of its version, a record has today's too."""
    for detector in ScoringEngine(DetectorConfig()).detectors:
        if detector.name in state.slots:
            detector_slot(state, detector)
    return state


def test_state_stored_by_e282a99_scores_on_as_the_same_state_of_ae4055c() -> None:
    """Every later event scores and alerts the same from the states e282a99 stored as
    from those ae4055c stored, whether kept decoded or stored and read back each time."""
    release = _fixture("identity")
    older = release | {"stored": {**release["stored"], **_stored_by_e282a99("identity")}}
    scored = _score_later(older, written_back=False)
    assert any(alerts for _, alerts in scored)
    assert scored == _score_later(release, written_back=False)
    assert scored == _score_later(older, written_back=True)


@pytest.mark.parametrize("team", TEAMS)
def test_a_team_state_of_version_3_loads_without_its_members(team: str) -> None:
    """Version 3 also stored the last members seen (written, never read): today's record
    is the same state without them, and scores on alike."""
    today = TeamState.from_bytes(_blob(_fixture(team)["stored"]["team"]))
    values = records.body(today.to_bytes())
    values.insert(legacy.TEAM_V3_UNREAD[0], ["ana", "bob"])
    older = msgspec.msgpack.encode([3, values])
    assert TeamState.from_bytes(older).to_bytes() == today.to_bytes()
    assert len(today.to_bytes()) < len(older)


def _version(blob: str) -> int | None:
    return records.stored_version(_blob(blob))


def _document(team: str = "identity") -> dict[str, Any]:
    """A user's state as ae4055c stored it (JSON), with every detector's slot."""
    users = _fixture(team)["stored"]["users"]
    document: dict[str, Any] = json.loads(_blob(max(users.values(), key=len)))
    assert set(legacy.SLOTS) == set(document["slots"])
    return document


def _load(document: dict[str, Any]) -> UserState:
    return UserState.from_bytes(json.dumps(document).encode())


def _slot(state: UserState, name: str) -> Any:
    """A detector's slot, read as the engine reads it."""
    (detector,) = [d for d in ScoringEngine(DetectorConfig()).detectors if d.name == name]
    slot = state.slots[name]
    return slot if isinstance(slot, Record) else detector.restore(slot)


@pytest.mark.parametrize("stored", [12, 13, 16])
def test_a_gaming_slot_of_ae4055c_keeps_its_output_levels_whatever_its_counters(
        stored: int) -> None:
    document = _document()
    values = document["slots"]["gaming"]
    assert values[3] != values[9]  # the usual and recent output levels differ
    document["slots"]["gaming"] = values[:stored]
    restored = _slot(_load(document), "gaming")
    assert [restored.usual_output.count, restored.usual_output.mean] == values[3:5]
    assert [restored.recent_output.count, restored.recent_output.mean] == values[9:11]


def test_a_loop_slot_stored_before_the_run_kept_its_own_clock_starts_the_run_afresh() -> None:
    document = _document()
    values = document["slots"]["scripted_loop"]
    document["slots"]["scripted_loop"] = values[:6] + [12, values[7]]  # 12 regular in a row
    restored = _slot(_load(document), "scripted_loop")
    assert restored.tokens.count == values[3]
    assert (restored.regular_in_a_row, restored.decades, restored.last_time) == (0, 0.0, -1.0)


def test_creep_slots_of_older_layouts_keep_what_they_can() -> None:
    document = _document()
    whole = _slot(_load(document), "creep")
    document["slots"]["creep"] = document["slots"]["creep"][:14] + [240_000.0, 0b111111000]
    hourly_only = _slot(_load(document), "creep")
    assert hourly_only.tracks == [whole.tracks[0], CreepTrack()]
    assert (hourly_only.day_requests, hourly_only.day_output_logs) == (0, 0.0)
    document["slots"]["creep"] = [10.0, 4.4, 0.02, 3.0, 0.5, 0.01, 1.2, 2.0, 0.8]  # CUSUM only
    assert _slot(_load(document), "creep") == CreepSlot()


def test_spike_and_new_pattern_slots_of_older_layouts_keep_what_they_can() -> None:
    document = _document()
    whole = _load(document)
    document["slots"]["spike"] = document["slots"]["spike"][:6]
    document["slots"]["new_pattern"] = document["slots"]["new_pattern"][:3]
    older = _load(document)
    spike, whole_spike = _slot(older, "spike"), _slot(whole, "spike")
    assert (spike.per_request, spike.per_hour) == (whole_spike.per_request, whole_spike.per_hour)
    assert spike.hour_size.count == spike.repeats.count == 0
    pattern, whole_pattern = _slot(older, "new_pattern"), _slot(whole, "new_pattern")
    assert pattern.known == whole_pattern.known
    assert pattern.burst_units == pattern.burst_requests == whole_pattern.burst_requests


def test_a_context_stored_with_one_session_and_no_slices_keeps_its_session() -> None:
    document = _document()
    context = document["context"]
    digest, requests, first, most = context[10][0][:4]
    context[10] = [digest, requests, first, most]  # one session, before several
    context[2] = [-1.0]  # before the slices
    state = _load(document)
    (session,) = state.context.sessions
    assert (session.digest, session.requests, session.first_input, session.most_input,
            session.last_input, session.last_time) == (digest, requests, first, most, 0, -1.0)
    assert sum(state.context.last_slices.requests) == 0


def test_a_slot_of_a_detector_ae4055c_did_not_have_starts_afresh() -> None:
    document = _document()
    document["slots"]["someday"] = [1.0, 2.0]
    assert "someday" not in _load(document).slots


def _layout(record: type[Record], layouts: dict[str, list[list[str]]]) -> None:
    """Each record's fields, in stored order, with their types; nested records too."""
    if record.__qualname__ in layouts:
        return
    fields = msgspec.structs.fields(record)
    layouts[record.__qualname__] = [[field.name, _type_name(field.type)] for field in fields]
    for field in fields:
        for nested in _records_in(field.type):
            _layout(nested, layouts)


def _type_name(annotation: Any) -> str:
    if annotation is records.Ints:  # held as an array, stored as the list it is
        return "list[int]"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__qualname__
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(_type_name(argument) for argument in arguments)
    return f"{_type_name(origin)}[{', '.join(_type_name(a) for a in arguments)}]"


def _records_in(annotation: Any) -> list[type[Record]]:
    if isinstance(annotation, type) and issubclass(annotation, Record):
        return [annotation]
    return [record for argument in typing.get_args(annotation)
            for record in _records_in(argument)]


def current_layouts() -> dict[str, dict[str, list[list[str]]]]:
    """Every stored record's layout, by what it is and its schema version."""
    roots: dict[str, list[type[Record]]] = {
        f"user state {user_state.CODEC_VERSION}": [
            UserState, *(d.slot_type for d in ScoringEngine(DetectorConfig()).detectors)],
        f"team state {team_state.CODEC_VERSION}": [TeamState],
        f"reorder buffer {BUFFER_VERSION}": [StoredBuffer],
        f"verdict book {verdicts.RECORD_VERSION}": [verdicts.VerdictBook],
    }
    result = {}
    for name, stored in roots.items():
        layouts: dict[str, list[list[str]]] = {}
        for record in stored:
            _layout(record, layouts)
        result[name] = dict(sorted(layouts.items()))
    return result


def test_stored_layouts_change_only_with_their_schema_version() -> None:
    """A record stored in one layout under a version must not be read in another: a
    changed layout needs a new version (and its old states kept loading), a new field
    at the end with a default is read from older states as that default."""
    stored = json.loads(LAYOUTS.read_text())
    current = current_layouts()
    for name, layouts in current.items():
        assert name in stored, f"{name}: new schema version; regenerate {LAYOUTS.name}"
        for record, fields in layouts.items():
            before = stored[name].get(record)
            assert before is not None and fields[:len(before)] == before, (
                f"{record} of {name} changed its stored layout: give it a new schema "
                f"version (see tokenradar.detectors.records), then regenerate {LAYOUTS.name}")


if __name__ == "__main__":  # add the layouts of a new schema version (older ones are kept)
    LAYOUTS.write_text(json.dumps(json.loads(LAYOUTS.read_text()) | current_layouts(),
                                  indent=1) + "\n")
    sys.exit(0)
