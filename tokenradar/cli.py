"""The ``tokenradar`` command. Imports lazily, so ``schema`` does not load Faust."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except _UserError as exc:
        print(f"tokenradar: {exc}", file=sys.stderr)
        return 2


class _UserError(Exception):
    """A mistake the user can fix; printed without a traceback."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokenradar",
        description="Real-time anomaly detection on AI token usage.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    demo = commands.add_parser("demo", help="embedded broker + worker + simulated organisation")
    demo.add_argument("--seconds", type=float, default=60.0,
                      help="how long to watch for alerts (default 60)")
    demo.add_argument("--users", type=int, default=40)
    demo.set_defaults(run=_demo)

    worker = commands.add_parser("worker", help="run the Faust worker")
    for option, env in (("--broker", "TOKENRADAR_BROKER"), ("--config", "TOKENRADAR_CONFIG"),
                        ("--input-topic", "TOKENRADAR_INPUT_TOPIC"),
                        ("--alerts-topic", "TOKENRADAR_ALERTS_TOPIC"),
                        ("--dlq-topic", "TOKENRADAR_DLQ_TOPIC"),
                        ("--group-id", "TOKENRADAR_GROUP_ID"),
                        ("--partitions", "TOKENRADAR_PARTITIONS"),
                        ("--metrics-port", "TOKENRADAR_METRICS_PORT"),
                        ("--metrics-host", "TOKENRADAR_METRICS_HOST")):
        worker.add_argument(option, help=f"also ${env}")
    worker.set_defaults(run=_worker)

    replay = commands.add_parser("replay", help="the same detectors over a file: a backtest")
    replay.add_argument("--input", type=Path, required=True, help="events, JSON lines")
    replay.add_argument("--alerts-out", type=Path, required=True)
    replay.add_argument("--scores-out", type=Path)
    replay.add_argument("--config", type=Path)
    replay.add_argument("--report", type=Path,
                        help="also write a self-contained HTML backtest report here")
    replay.add_argument("--labels", type=Path,
                        help="with --report: incident labels, to add the evaluation and spans")
    replay.set_defaults(run=_replay)

    simulate = commands.add_parser("simulate", help="write synthetic events with labels")
    target = simulate.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write events to this JSONL file")
    target.add_argument("--topic", help="produce events to this Kafka topic")
    simulate.add_argument("--broker", help="with --topic; also $TOKENRADAR_BROKER")
    simulate.add_argument("--labels", type=Path, help="write incident labels to this JSONL file")
    simulate.add_argument("--users", type=int, default=300)
    simulate.add_argument("--teams", type=int, default=15)
    simulate.add_argument("--days", type=int, default=28)
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--incidents-per-kind", type=int, default=9)
    simulate.add_argument("--shifted-teams", type=int, default=2,
                          help="teams that ramp up together (population shifts)")
    simulate.add_argument("--duplicate-share", type=float, default=0.0,
                          help="share of events redelivered with the same event_id")
    simulate.add_argument("--randomise", action="store_true",
                          help="a randomised organisation: every habit, incident range, "
                               "shifted teams and duplicates drawn from --seed (the "
                               "robustness matrix's; --shifted-teams and "
                               "--duplicate-share are then drawn too)")
    simulate.set_defaults(run=_simulate)

    evaluate = commands.add_parser("evaluate", help="score alerts against incident labels")
    evaluate.add_argument("--labels", type=Path, required=True,
                          help="incident labels, JSON lines (tokenradar simulate --labels)")
    evaluate.add_argument("--alerts", type=Path, required=True,
                          help="anomaly events, JSON lines (tokenradar replay --alerts-out)")
    evaluate.add_argument("--events", type=Path,
                          help="the events file, to count active user-days for false-alert rates")
    evaluate.add_argument("--json-out", type=Path, help="also write every figure as JSON")
    evaluate.set_defaults(run=_evaluate)

    schema = commands.add_parser("schema", help="print the JSON Schema of both messages")
    schema.set_defaults(run=_schema)

    config = commands.add_parser("config", help="detector configuration")
    config_commands = config.add_subparsers(title="config commands", metavar="COMMAND")
    check = config_commands.add_parser("check", help="validate a configuration file")
    check.add_argument("file", type=Path)
    check.set_defaults(run=_config_check)
    return parser


def _load_config(path: Path | None):  # type: ignore[no-untyped-def]
    from schemas.config import DetectorConfig
    from schemas.config_file import ConfigFileError, load_config

    if path is None:
        return DetectorConfig()
    try:
        return load_config(path)
    except ConfigFileError as exc:
        raise _UserError(str(exc)) from None


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from schemas import WorkerSettings

    options = {name: value for name, value in vars(args).items() if name != "run"}
    try:
        return WorkerSettings.from_sources(options)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise _UserError(f"bad worker setting: {problems}") from None


def _worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    config = _load_config(settings.config)
    from streams.broker import BrokerUnavailable
    from streams.worker import run_worker

    try:
        run_worker(settings, config)
    except BrokerUnavailable as exc:
        raise _UserError(str(exc)) from None
    return 0


def _replay(args: argparse.Namespace) -> int:
    from tokenradar.replay import print_progress, replay_file

    if not args.input.is_file():
        raise _UserError(f"--input {args.input}: no such file")
    config = _load_config(args.config)
    if args.labels is not None and args.report is None:
        raise _UserError("--labels goes with --report; to score alerts alone use "
                         "`tokenradar evaluate`")
    report = labels = None
    if args.report is not None:
        from tokenradar.evaluation_files import EvaluationInputError, load_labels
        from tokenradar.report import ReportBuilder

        try:  # read the labels first: a typo in them should not cost a whole replay
            labels = load_labels(args.labels) if args.labels is not None else None
        except EvaluationInputError as exc:
            raise _UserError(str(exc)) from None
        report = ReportBuilder(config.scoring.alert_threshold, config.version,
                               source=str(args.input))
    summary = replay_file(args.input, args.alerts_out, args.scores_out, config,
                          progress=print_progress, report=report)
    for example in summary.invalid_examples:
        print(f"skipped {args.input} {example}", file=sys.stderr)
    print(summary.describe())
    if report is not None:
        evaluation = None
        if labels is not None:
            from tokenradar.evaluate import evaluate
            from tokenradar.evaluation_files import count_active_user_days, load_alerts

            evaluation = evaluate(labels, load_alerts(args.alerts_out),
                                  count_active_user_days(args.input))
        report.write(args.report, evaluation)
        print(f"wrote the backtest report to {args.report}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from tokenradar.evaluation_files import EvaluationInputError
    from tokenradar.evaluation_text import run_evaluation

    try:
        run_evaluation(args.labels, args.alerts, args.events, args.json_out)
    except EvaluationInputError as exc:
        raise _UserError(str(exc)) from None
    return 0


def _simulate(args: argparse.Namespace) -> int:
    import os

    from tokenradar.simulation import (
        SimulationSpec,
        build_organisation,
        iter_events,
        random_organisation,
        write_labels,
        write_simulation,
    )

    try:
        if args.randomise:
            spec = random_organisation(args.seed, users=args.users, teams=args.teams,
                                       days=args.days, incidents_per_kind=args.incidents_per_kind)
        else:
            spec = SimulationSpec(users=args.users, teams=args.teams, days=args.days,
                                  seed=args.seed, incidents_per_kind=args.incidents_per_kind,
                                  shifted_teams=args.shifted_teams,
                                  duplicate_share=args.duplicate_share)
    except ValueError as exc:
        raise _UserError(f"simulate: {exc}") from None
    if args.out is not None:
        count = write_simulation(spec, args.out, args.labels)
        print(f"wrote {count:,} events to {args.out}")
        return 0
    from schemas import WorkerSettings
    from streams.publish import produce_events

    broker = args.broker or os.environ.get("TOKENRADAR_BROKER")
    if not broker:
        raise _UserError("--topic needs --broker (or $TOKENRADAR_BROKER)")
    bootstrap = WorkerSettings(broker=broker).bootstrap_servers
    count = produce_events(bootstrap, args.topic, iter_events(spec))
    if args.labels is not None:
        write_labels(args.labels, build_organisation(spec).labels)
    print(f"produced {count:,} events to {args.topic}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from schemas import AnomalyEvent, DeadLetter, TokenUsageEvent

    document = {
        "token-usage": TokenUsageEvent.model_json_schema(),
        "token-anomalies": AnomalyEvent.model_json_schema(),
        "token-usage.dlq": DeadLetter.model_json_schema(),
    }
    print(json.dumps(document, indent=2))
    return 0


def _config_check(args: argparse.Namespace) -> int:
    config = _load_config(args.file)
    print(f"{args.file}: OK (config_version {config.version})")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from streams.demo import run_demo

    return run_demo(seconds=args.seconds, users=args.users)
