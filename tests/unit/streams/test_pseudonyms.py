"""Pseudonyms: with a key, no alert, score, state key, stored state, forwarded message or
dead letter carries a real user id, in the worker's batch step and in replay alike."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tokenradar.cli import main
from tokenradar.detectors import ScoringEngine
from tokenradar.lab.simulation import SimulationSpec, simulate
from tokenradar.replay import replay_file
from tokenradar.schemas import AnomalyEvent, DetectorConfig
from tokenradar.schemas.pseudonyms import Pseudonymiser
from tokenradar.streams.batch import Received, flush_routes, partition_for, process_batch

KEY = b"a test key of 16+ characters"
PARTITIONS = 4
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def _event(user: str, number: int, team: str | None) -> dict[str, object]:
    return {"event_id": f"e{number}", "timestamp": f"2026-11-24T09:{number:02d}:02Z",
            "user_id": user, "team": team, "model": "m", "input_tokens": 100,
            "output_tokens": 10}


def _received(event: dict[str, object], key: str | None, number: int) -> Received:
    value = json.dumps(event).encode()
    route = key or "x"
    return Received(key.encode() if key else None, value, "usage",
                    partition_for(route, PARTITIONS), number)


def test_batch_step_keeps_no_user_id_in_states_forwards_or_dead_letters() -> None:
    names = Pseudonymiser(KEY)
    messages = [
        _received(_event("ana@example.com", 1, "core"), "core", 1),  # scored here
        _received(_event("bob@example.com", 2, None), "bob@example.com", 2),  # re-keyed
        Received(b"carl@example.com", json.dumps(
            {**_event("carl@example.com", 3, "core"), "input_tokens": -1}).encode(),
            "usage", 0, 3),  # invalid: dead-lettered
    ]
    engine = ScoringEngine(DetectorConfig())
    outcome = process_batch(messages, engine, {}.get, "usage", PARTITIONS, NOW,
                            pseudonymiser=names)
    outcome_text = repr(outcome.states) + repr(outcome.rekeyed) + "".join(
        letter.model_dump_json() for letter in outcome.dead_letters)
    for person in ("ana", "bob", "carl"):
        assert person not in outcome_text
    (forwarded,) = outcome.rekeyed
    assert forwarded.key == names.pseudonym("bob@example.com").encode()  # teamless: its route
    assert json.loads(forwarded.value)["user_id"] == names.pseudonym("bob@example.com")
    (letter,) = outcome.dead_letters
    assert letter.original_key_base64 is None and letter.fields is not None
    assert letter.fields["user_id"].value is None  # described, never copied
    assert letter.original_size == len(messages[2].value)  # still found by size, hash, offset
    assert letter.source_offset == 3 and "input_tokens" in letter.reason
    flushed = flush_routes(["core"], engine, outcome.states.get, PARTITIONS, NOW)
    assert flushed.scored == 1
    assert b"ana" not in b"".join(flushed.states) + b"".join(flushed.states.values())
    assert any(names.pseudonym("ana@example.com").encode() in key for key in flushed.states)


def test_forwarded_events_are_not_pseudonymised_twice() -> None:
    names = Pseudonymiser(KEY)
    alias = names.pseudonym("bob@example.com")
    forwarded = Received(alias.encode(), json.dumps(_event(alias, 1, None)).encode(),
                         "tokenradar-usage-by-user", partition_for(alias, PARTITIONS), 0, 1)
    engine = ScoringEngine(DetectorConfig())
    outcome = process_batch([forwarded], engine, {}.get, "usage", PARTITIONS, NOW,
                            pseudonymiser=names)
    flushed = flush_routes([alias], engine, outcome.states.get, PARTITIONS, NOW)
    assert flushed.scored == 1
    assert {key.split(b"\x1f")[1] for key in flushed.states} >= {alias.encode()}


def test_a_dead_letter_for_a_bad_user_id_never_quotes_it() -> None:
    names = Pseudonymiser(KEY)
    user = "someone.with.a.very.long.name@example.com" * 7  # too long for a user id
    message = Received(None, json.dumps(_event(user, 1, "core")).encode(), "usage", 0, 1)
    outcome = process_batch([message], ScoringEngine(DetectorConfig()), {}.get, "usage",
                            PARTITIONS, NOW, pseudonymiser=names)
    (letter,) = outcome.dead_letters
    assert "user_id" in letter.reason and "someone" not in letter.model_dump_json()


@pytest.fixture(scope="module")
def organisation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    events, _ = simulate(SimulationSpec(users=12, teams=2, days=10, seed=5))
    path = tmp_path_factory.mktemp("pseudonyms") / "events.jsonl"
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def test_replay_under_pseudonyms_finds_the_same_alerts_under_pseudonyms(
        organisation: Path, tmp_path: Path) -> None:
    clear = replay_file(organisation, tmp_path / "clear.jsonl")
    names = Pseudonymiser(KEY)
    hidden = replay_file(organisation, tmp_path / "hidden.jsonl", tmp_path / "scores.jsonl",
                         pseudonymiser=names)
    replay_file(organisation, tmp_path / "again.jsonl", pseudonymiser=names)
    assert clear.alerts > 0 and hidden.alerts_by_kind == clear.alerts_by_kind
    assert (tmp_path / "again.jsonl").read_bytes() == (tmp_path / "hidden.jsonl").read_bytes()
    users = {json.loads(line)["user_id"] for line in organisation.read_text().splitlines()}
    written = (tmp_path / "hidden.jsonl").read_text() + (tmp_path / "scores.jsonl").read_text()
    assert not any(user in written for user in users)
    alerts = [AnomalyEvent.model_validate_json(line)
              for line in (tmp_path / "hidden.jsonl").read_text().splitlines()]
    clear_alerts = [AnomalyEvent.model_validate_json(line)
                    for line in (tmp_path / "clear.jsonl").read_text().splitlines()]
    by_alias = {names.pseudonym(user): user for user in users}
    assert Counter((by_alias.get(a.user_id, a.user_id), a.kind, a.event_time) for a in alerts) \
        == Counter((a.user_id, a.kind, a.event_time) for a in clear_alerts)


def test_reveal_maps_candidates_to_pseudonyms_with_the_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY.decode() + "\n")
    directory = tmp_path / "staff.txt"
    directory.write_text("ana@example.com\nbob@example.com\n\n")
    alias = Pseudonymiser(KEY).pseudonym("bob@example.com")
    assert main(["reveal", "--pseudonym-key-file", str(key_file), "--candidates",
                 str(directory), "--pseudonym", alias]) == 0
    assert capsys.readouterr().out == f"{alias}\tbob@example.com\n"
    assert main(["reveal", "--pseudonym-key-file", str(key_file), "ana@example.com",
                 "--pseudonym", "pn-0123"]) == 1
    assert "cannot be inverted" in capsys.readouterr().err


def test_reveal_without_the_key_or_with_a_short_one_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKENRADAR_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("TOKENRADAR_PSEUDONYM_KEY_FILE", raising=False)
    assert main(["reveal", "ana"]) == 2
    assert "needs the pseudonym key" in capsys.readouterr().err
    monkeypatch.setenv("TOKENRADAR_PSEUDONYM_KEY", "short")
    assert main(["reveal", "ana"]) == 2
    error = capsys.readouterr().err
    assert "at least 16 characters" in error and "short" not in error

