"""The tokenradar command: exit codes and messages a user sees."""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tokenradar.cli import _parser, main

EXAMPLE = Path(__file__).parents[3] / "examples" / "tokenradar.toml"


def test_config_check_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(EXAMPLE)]) == 0
    assert "OK" in capsys.readouterr().out


def test_config_check_rejects_a_bad_file_naming_file_line_and_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[scoring]\nalert_threshold = 0.6\n\n[rate]\nwindow_mintues = 5\n")
    assert main(["config", "check", str(path)]) == 2
    error = capsys.readouterr().err
    assert str(path) in error
    assert "line 5, key 'rate.window_mintues'" in error
    assert "Traceback" not in error


def test_schema_prints_json_schemas_of_both_messages(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert "input_tokens" in document["token-usage"]["properties"]
    assert "severity" in document["token-anomalies"]["properties"]


def test_replay_of_a_missing_file_exits_2_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.jsonl"
    assert main(["replay", "--input", str(missing), "--alerts-out",
                 str(tmp_path / "alerts.jsonl")]) == 2
    error = capsys.readouterr().err
    assert str(missing) in error and "no such file" in error


def test_replay_skips_what_is_ahead_of_its_now_as_the_worker_dead_letters_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps({
        "event_id": f"e{day}", "timestamp": f"2026-11-{day:02d}T10:00:00Z", "user_id": "ana",
        "model": "m", "input_tokens": 100, "output_tokens": 10}) + "\n" for day in range(1, 11)))
    alerts = str(tmp_path / "alerts.jsonl")
    assert main(["replay", "--input", str(events), "--alerts-out", alerts,
                 "--now", "2026-11-05T10:00:00Z", "--max-ahead-seconds", "86400"]) == 0
    captured = capsys.readouterr()
    assert "6 events scored" in captured.out and "4 invalid lines skipped" in captured.out
    assert "max_ahead_seconds" in captured.err
    with pytest.raises(SystemExit) as exited:  # argparse's usage error
        main(["replay", "--input", str(events), "--alerts-out", alerts,
              "--now", "2026-11-05T10:00:00"])
    assert exited.value.code == 2 and "has no offset" in capsys.readouterr().err
    assert main(["replay", "--input", str(events), "--alerts-out", alerts,
                 "--max-event-bytes", "12"]) == 2
    assert "max_event_bytes" in capsys.readouterr().err


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "commands" in capsys.readouterr().out


def test_worker_with_a_bad_broker_exits_2_before_starting(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKENRADAR_BROKER", raising=False)
    assert main(["worker", "--broker", "no-port-here"]) == 2
    assert "broker" in capsys.readouterr().err


def test_installed_command_runs_simulate_then_replay(tmp_path: Path) -> None:
    """End to end through the console entry point, as a user types it."""
    events, alerts = tmp_path / "events.jsonl", tmp_path / "alerts.jsonl"
    run = [sys.executable, "-m", "tokenradar"]
    subprocess.run([*run, "simulate", "--out", str(events), "--users", "5", "--days", "9"],
                   check=True, capture_output=True, timeout=60)
    done = subprocess.run([*run, "replay", "--input", str(events), "--alerts-out", str(alerts)],
                          check=True, capture_output=True, text=True, timeout=60)
    assert "events scored" in done.stdout
    assert alerts.exists()


def test_worker_with_a_broker_that_does_not_answer_exits_2_saying_how_to_fix(
        capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a free loopback port, closed again: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main(["worker", "--broker", f"127.0.0.1:{port}", "--broker-wait-seconds", "2"]) == 2
    out, error = capsys.readouterr()
    assert f"127.0.0.1:{port} does not answer" in error
    assert "(waited 2 s)" in error and "--broker or TOKENRADAR_BROKER" in error
    # Asked again meanwhile, each time with a line saying so:
    assert out.count("does not answer Kafka requests; trying again in") >= 2


def test_version_is_the_installed_distribution_version(
        capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"tokenradar {version('tokenradar')}"


@pytest.mark.parametrize(("command", "option"), [
    (["simulate", "--out", "{missing}/x.jsonl"], "--out"),
    (["simulate", "--out", "{tmp}/x.jsonl", "--labels", "{missing}/l.jsonl"], "--labels"),
    (["replay", "--input", "{events}", "--alerts-out", "{missing}/a.jsonl"], "--alerts-out"),
    (["replay", "--input", "{events}", "--alerts-out", "{tmp}/a.jsonl",
      "--scores-out", "{missing}/s.jsonl"], "--scores-out"),
    (["replay", "--input", "{events}", "--alerts-out", "{tmp}/a.jsonl",
      "--report", "{missing}/r.html"], "--report"),
    (["evaluate", "--labels", "{events}", "--alerts", "{events}",
      "--json-out", "{missing}/e.json"], "--json-out"),
])
def test_a_missing_output_folder_is_one_line_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str],
        option: str) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("")
    missing = tmp_path / "nonexist"
    argv = [part.format(missing=missing, tmp=tmp_path, events=events) for part in command]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert f"{option} {missing}/" in error and f"the folder {missing} does not exist" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]  # nothing written


def _options(parser: argparse.ArgumentParser, path: str = "tokenradar"
             ) -> list[tuple[str, argparse.ArgumentParser, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                found += _options(command, f"{path} {name}")
        elif action.option_strings and action.dest not in ("help", "version"):
            found.append((f"{path} {action.option_strings[-1]}", parser, action))
    return found


def test_every_option_shows_a_help_text_and_its_default() -> None:
    options = _options(_parser())
    assert len(options) > 20
    for name, parser, action in options:
        assert action.help, f"{name} has no help"
        shown = parser._get_formatter()._expand_help(action)  # as --help prints it
        assert action.required or "(default: " in shown, f"{name} shows no default: {shown}"


def test_long_commands_print_plain_progress_lines_off_a_terminal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tokenradar.progress.PLAIN_EVERY_SECONDS", 0.0)
    events = tmp_path / "events.jsonl"
    assert main(["simulate", "--out", str(events), "--users", "8", "--teams", "2",
                 "--days", "9", "--incidents-per-kind", "1", "--shifted-teams", "0"]) == 0
    assert main(["replay", "--input", str(events), "--alerts-out",
                 str(tmp_path / "a.jsonl")]) == 0
    error = capsys.readouterr().err
    assert re.search(r"^simulate: [\d.]+ of 9\.0 days \(\d+%\), [\d,]+ events$", error,
                     re.MULTILINE), error
    assert re.search(r"^replay events\.jsonl: [\d.]+ of [\d.]+ MB \(\d+%\), [\d,]+ events, "
                     r"\d+ alerts$", error, re.MULTILINE), error
    assert "\x1b" not in error and "\r" not in error


def test_simulate_randomise_writes_the_randomised_organisation_of_the_seed(
        tmp_path: Path) -> None:
    from tokenradar.lab.simulation import random_organisation, write_simulation

    events, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    assert main(["simulate", "--randomise", "--seed", "4", "--users", "12", "--teams", "3",
                 "--days", "9", "--incidents-per-kind", "1", "--out", str(events),
                 "--labels", str(labels)]) == 0
    expected = tmp_path / "expected.jsonl"
    write_simulation(random_organisation(4, users=12, teams=3, days=9, incidents_per_kind=1),
                     expected, None)
    assert events.read_bytes() == expected.read_bytes()
    plain = tmp_path / "plain.jsonl"
    assert main(["simulate", "--seed", "4", "--users", "12", "--teams", "3", "--days", "9",
                 "--incidents-per-kind", "1", "--out", str(plain)]) == 0
    assert plain.read_bytes() != events.read_bytes()


def test_worker_help_shows_every_worker_setting_with_its_variable(
        capsys: pytest.CaptureFixture[str]) -> None:
    from tokenradar.schemas import WorkerSettings

    with pytest.raises(SystemExit):
        main(["worker", "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # as printed, wrapping undone
    for name in WorkerSettings.model_fields:
        assert f"--{name.replace('_', '-')}" in shown
        assert f"$TOKENRADAR_{name.upper()}" in shown


def test_alerts_tail_offers_every_declared_kind() -> None:
    from tokenradar.schemas.kinds import declared_kinds

    (tail,) = [action for name, parser, action in _options(_parser())
               if name.endswith("tail --kind")]
    assert list(tail.choices) == [kind.name for kind in declared_kinds()]
