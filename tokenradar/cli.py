"""The ``tokenradar`` command. Imports lazily, so ``schema`` does not load Faust."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any


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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tokenradar")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokenradar",
        description="Real-time anomaly detection on AI token usage.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    # Every option's help shows its default.
    commands = parser.add_subparsers(title="commands", metavar="COMMAND",
                                     parser_class=_CommandParser)

    demo = commands.add_parser("demo", help="embedded broker + worker + simulated organisation")
    demo.add_argument("--seconds", type=float, default=60.0,
                      help="how long to watch for alerts")
    demo.add_argument("--users", type=int, default=40, help="people in the organisation")
    demo.set_defaults(run=_demo)

    worker = commands.add_parser("worker", help="run the Faust worker")
    from tokenradar.schemas.settings import WorkerSettings

    WorkerSettings.add_options(worker)
    worker.set_defaults(run=_worker)

    replay = commands.add_parser("replay", help="the same detectors over a file: a backtest")
    replay.add_argument("--input", type=Path, required=True, help="events, JSON lines")
    replay.add_argument("--alerts-out", type=Path, required=True,
                        help="write the alerts here, JSON lines")
    replay.add_argument("--scores-out", type=Path,
                        help="also write every event's score here, JSON lines")
    replay.add_argument("--config", type=Path,
                        help="detector configuration (TOML); none: the defaults")
    replay.add_argument("--report", type=Path,
                        help="also write a self-contained HTML backtest report here")
    replay.add_argument("--labels", type=Path,
                        help="with --report: incident labels, to add the evaluation and spans")
    replay.add_argument("--feedback", type=Path,
                        help="verdicts on alerts, JSON lines (tokenradar feedback --out), "
                             "applied as the worker applies its feedback topic's")
    from tokenradar.schemas.settings import InputLimitSettings, Pseudonymisation, Retention

    Pseudonymisation.add_options(replay)
    Retention.add_options(replay)
    InputLimitSettings.add_options(replay)
    replay.add_argument("--now", type=_instant, default=argparse.SUPPRESS,
                        help="the processing clock, RFC 3339: events dated more than "
                        "--max-ahead-seconds after it are skipped, as the worker "
                        "dead-letters them (default: when replay starts)")
    replay.set_defaults(run=_replay)

    feedback = commands.add_parser(
        "feedback", help="a verdict on an alert: false, true or expected")
    feedback.add_argument("alert_id", metavar="ALERT_ID",
                          help="the alert's id, or a unique start of it (alerts tail shows 12)")
    feedback.add_argument("--verdict", choices=["false", "true", "expected"], required=True,
                          help="false: a false alert; expected: right, but normal for them; "
                               "false and expected silence the user (or team) and kind, and "
                               "the detectors learn it as usual meanwhile; true: recorded")
    feedback.add_argument("--for", dest="silence_for", default="14d",
                          help="how long false and expected silence: m, h, d or w, e.g. 36h")
    feedback.add_argument("--note", help="why, for the people who read the verdicts")
    feedback.add_argument("--at", help="when the verdict takes effect, in event time (RFC "
                                       "3339 with an offset); default: now. For backtests")
    feedback.add_argument("--alerts", type=Path,
                          help="find the alert in this alerts file (replay --alerts-out) "
                               "instead of the alerts topic")
    feedback.add_argument("--out", type=Path,
                          help="append the verdict to this JSONL file (for replay "
                               "--feedback) instead of producing it to the feedback topic")
    feedback.add_argument("--broker", help="default $TOKENRADAR_BROKER, else 127.0.0.1:9092")
    feedback.add_argument("--topic", help="feedback topic; default $TOKENRADAR_FEEDBACK_TOPIC, "
                                          "else token-anomalies.feedback")
    feedback.add_argument("--alerts-topic",
                          help="where to find the alert; default $TOKENRADAR_ALERTS_TOPIC, "
                               "else token-anomalies")
    _add_security_options(feedback)
    feedback.set_defaults(run=_feedback)

    reveal = commands.add_parser(
        "reveal", help="which pseudonym is whose, among candidate user ids (needs the key)",
        description="An HMAC cannot be inverted: reveal only tells which of the candidate "
        "user ids you give (a staff directory) maps to which pseudonym under the key.")
    reveal.add_argument("user_ids", nargs="*", metavar="USER_ID", help="candidate user ids")
    reveal.add_argument("--candidates", type=Path, action="append",
                        help="a file of candidate user ids, one a line ('-': standard input); "
                             "repeat for several")
    reveal.add_argument("--pseudonym", action="append",
                        help="print only the candidates with this pseudonym (repeat for "
                             "several); says which are not among the candidates")
    Pseudonymisation.add_options(reveal)
    reveal.set_defaults(run=_reveal)

    simulate = commands.add_parser("simulate", help="write synthetic events with labels")
    target = simulate.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write events to this JSONL file")
    target.add_argument("--topic", help="produce events to this Kafka topic")
    simulate.add_argument("--broker", help="with --topic; also $TOKENRADAR_BROKER")
    _add_security_options(simulate)
    simulate.add_argument("--labels", type=Path, help="write incident labels to this JSONL file")
    simulate.add_argument("--users", type=int, default=300, help="people in the organisation")
    simulate.add_argument("--teams", type=int, default=15, help="teams they work in")
    simulate.add_argument("--days", type=int, default=28, help="days of usage to simulate")
    simulate.add_argument("--seed", type=int, default=7,
                          help="random seed: the same seed gives the same events")
    simulate.add_argument("--incidents-per-kind", type=int, default=9,
                          help="injected incidents of each kind")
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
    evaluate.add_argument("--alerts-with-feedback", type=Path,
                          help="the alerts of the same events replayed with --feedback: "
                               "also print precision with and without the verdicts")
    evaluate.add_argument("--verdicts-out", type=Path,
                          help="write the verdicts a reviewer who knew the labels would give "
                               "on the alerts (for replay --feedback)")
    evaluate.set_defaults(run=_evaluate)

    budgets = commands.add_parser(
        "budgets", help="each budget's spend, forecast and run-out date, from an events file")
    budgets.add_argument("--input", type=Path, required=True,
                         help="events, JSON lines (scored as replay scores them)")
    budgets.add_argument("--config", type=Path, required=True,
                         help="the configuration with the [budgets] to forecast (TOML)")
    budgets.set_defaults(run=_budgets)

    _add_broker_commands(commands)

    schema = commands.add_parser("schema", help="print the JSON Schema of the messages")
    schema.set_defaults(run=_schema)

    config = commands.add_parser("config", help="detector configuration")
    config_commands = config.add_subparsers(title="config commands", metavar="COMMAND",
                                            parser_class=_CommandParser)
    check = config_commands.add_parser("check", help="validate a configuration file")
    check.add_argument("file", type=Path, help="the configuration, TOML")
    check.set_defaults(run=_config_check)
    return parser


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: its help shows every option's default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


def _output(path: Path | None, option: str) -> None:
    """Fail before any work when an output file's folder does not exist."""
    if path is not None and not path.parent.is_dir():
        raise _UserError(f"{option} {path}: the folder {path.parent} does not exist; "
                         "create it first, or choose another path")


def _add_broker_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``broker``, ``alerts tail`` and ``bridge``: a local broker, and reading alerts."""
    from typing import get_args

    from tokenradar.schemas.alerts import AnomalyKind, Severity

    severities = get_args(Severity)
    broker = commands.add_parser(
        "broker", help="run the embedded Tansu broker on 127.0.0.1 for local development")
    broker.add_argument("--port", type=int,
                        help="default 9092, or a free port when 9092 is taken")
    broker.add_argument("--log-file", type=Path, help="write the broker's own log here")
    broker.set_defaults(run=_broker)

    alerts = commands.add_parser("alerts", help="read the alerts topic")
    alerts_commands = alerts.add_subparsers(title="alerts commands", metavar="COMMAND")
    tail = alerts_commands.add_parser(
        "tail", help="follow alerts, one line each, coloured by severity")
    _add_alert_source(tail, "from its end")
    tail.add_argument("--kind", action="append", choices=[k.value for k in AnomalyKind],
                      help="only this kind (repeat for several)")
    tail.add_argument("--severity", choices=severities, default="low",
                      help="only alerts at least this severe (default low)")
    tail.add_argument("--team", action="append", help="only this team (repeat for several)")
    tail.add_argument("--json", action="store_true",
                      help="print each alert message as it is, one JSON object per line")
    tail.set_defaults(run=_alerts_tail)

    bridge = commands.add_parser(
        "bridge", help="forward alerts to Alertmanager and/or a Slack-style webhook")
    _add_alert_source(bridge, "for a new group, from its end")
    bridge.add_argument("--alertmanager-url",
                        help="Alertmanager base URL; also $TOKENRADAR_ALERTMANAGER_URL")
    bridge.add_argument("--webhook-url",
                        help="Slack-style incoming webhook; also $TOKENRADAR_WEBHOOK_URL")
    bridge.add_argument("--min-severity", choices=severities,
                        help="forward alerts at least this severe (default medium); "
                             "also $TOKENRADAR_MIN_SEVERITY")
    bridge.add_argument("--group-id", help="consumer group (default tokenradar-bridge); "
                                           "also $TOKENRADAR_BRIDGE_GROUP_ID")
    bridge.add_argument("--hold-minutes", type=float,
                        help="Alertmanager resolves an alert this long after its "
                             "detection (default 240, the detectors' default cooldown)")
    bridge.set_defaults(run=_bridge)


def _add_alert_source(parser: argparse.ArgumentParser, default_start: str) -> None:
    parser.add_argument("--broker", help="default $TOKENRADAR_BROKER, else 127.0.0.1:9092")
    parser.add_argument("--topic", help="default $TOKENRADAR_ALERTS_TOPIC, else token-anomalies")
    parser.add_argument("--from-beginning", action="store_true",
                        help=f"start at the topic's oldest alert (default: {default_start})")
    _add_security_options(parser)


def _add_security_options(parser: argparse.ArgumentParser) -> None:
    """The worker's TLS and SASL settings, for a command that talks to Kafka."""
    from tokenradar.schemas.settings import KafkaSecurity

    KafkaSecurity.add_options(parser.add_argument_group(
        "Kafka security", "as the worker's; see README, Security and privacy"))


def _security(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The command's Kafka security settings: options, else $TOKENRADAR_* variables."""
    from pydantic import ValidationError

    from tokenradar.schemas.settings import KafkaSecurity, settings_problems
    from tokenradar.streams.security import SecuritySettingsError, tls_context

    try:
        security = KafkaSecurity.from_sources(vars(args))
        tls_context(security)
    except ValidationError as exc:
        raise _UserError(f"bad Kafka security setting: {settings_problems(exc)}") from None
    except SecuritySettingsError as exc:
        raise _UserError(str(exc)) from None
    return security


def _load_config(path: Path | None):  # type: ignore[no-untyped-def]
    from tokenradar.schemas.config import DetectorConfig
    from tokenradar.schemas.config_file import ConfigFileError, load_config

    if path is None:
        return DetectorConfig()
    try:
        return load_config(path)
    except ConfigFileError as exc:
        raise _UserError(str(exc)) from None


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from tokenradar.schemas import WorkerSettings
    from tokenradar.schemas.settings import settings_problems

    options = {name: value for name, value in vars(args).items() if name != "run"}
    try:
        return WorkerSettings.from_sources(options)
    except ValidationError as exc:
        raise _UserError(f"bad worker setting: {settings_problems(exc)}") from None


def _instant(text: str) -> datetime:
    """An RFC 3339 time with its offset, for ``--now``."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 time: give e.g. 2026-11-24T09:15:00Z") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no offset: add Z or +hh:mm")
    return value


def _input_limits(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """--max-event-bytes and --max-ahead-seconds, else their $TOKENRADAR_* variables, else
    the worker's defaults."""
    from pydantic import ValidationError

    from tokenradar.schemas.settings import InputLimitSettings, settings_problems

    try:
        return InputLimitSettings.from_sources(vars(args)).input_limits
    except ValidationError as exc:
        raise _UserError(f"bad setting: {settings_problems(exc)}") from None


def _worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    config = _load_config(settings.config)
    from tokenradar.streams.broker import BrokerUnavailable
    from tokenradar.streams.security import SecuritySettingsError
    from tokenradar.streams.worker import run_worker

    try:
        run_worker(settings, config)
    except (BrokerUnavailable, SecuritySettingsError) as exc:
        raise _UserError(str(exc)) from None
    return 0


def _replay(args: argparse.Namespace) -> int:
    from tokenradar.progress import CommandProgress
    from tokenradar.replay import replay_file

    if not args.input.is_file():
        raise _UserError(f"--input {args.input}: no such file")
    for path, option in ((args.alerts_out, "--alerts-out"), (args.scores_out, "--scores-out"),
                         (args.report, "--report")):
        _output(path, option)
    config = _load_config(args.config)
    if args.feedback is not None and not args.feedback.is_file():
        raise _UserError(f"--feedback {args.feedback}: no such file")
    limits = _input_limits(args)
    if args.labels is not None and args.report is None:
        raise _UserError("--labels goes with --report; to score alerts alone use "
                         "`tokenradar evaluate`")
    report = labels = None
    if args.report is not None:
        from tokenradar.lab.evaluation_files import EvaluationInputError, load_labels
        from tokenradar.lab.report import ReportBuilder

        try:  # read the labels first: a typo in them should not cost a whole replay
            labels = load_labels(args.labels) if args.labels is not None else None
        except EvaluationInputError as exc:
            raise _UserError(str(exc)) from None
        report = ReportBuilder(config.scoring.alert_threshold, config.version,
                               source=str(args.input), money=config)
    from tokenradar.replay import InvalidFeedbackFile

    pseudonymiser = _pseudonymisation(args).pseudonymiser()
    retention = _retention(args)
    with CommandProgress(f"replay {args.input.name}", args.input.stat().st_size, "MB",
                         scale=1e-6) as progress:
        try:
            summary = replay_file(args.input, args.alerts_out, args.scores_out, config,
                                  progress=progress.update, report=report,
                                  feedback=args.feedback, pseudonymiser=pseudonymiser,
                                  state_expiry_days=retention.state_expiry_days,
                                  limits=limits,
                                  now=args.now.timestamp() if "now" in args else None)
        except InvalidFeedbackFile as exc:
            raise _UserError(str(exc)) from None
    for example in summary.invalid_examples:
        print(f"skipped {args.input} {example}", file=sys.stderr)
    print(summary.describe())
    if summary.calibration:
        budget = config.calibration.false_alerts_per_1000_user_days
        print(f"thresholds, raised where a team's own ordinary days would alert on more than "
              f"{budget:g} in 1,000 user-days:")
        for line in summary.calibration:
            print("  " + line)
    if report is not None:
        evaluation = None
        if labels is not None:
            from tokenradar.lab.evaluate import evaluate
            from tokenradar.lab.evaluation_files import count_active_user_days, load_alerts

            evaluation = evaluate(labels, load_alerts(args.alerts_out),
                                  count_active_user_days(args.input))
        report.write(args.report, evaluation)
        print(f"wrote the backtest report to {args.report}")
    return 0


def _pseudonymisation(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The pseudonym key: --pseudonym-key-file, else $TOKENRADAR_PSEUDONYM_KEY(_FILE)."""
    from pydantic import ValidationError

    from tokenradar.schemas.settings import Pseudonymisation, settings_problems

    try:
        return Pseudonymisation.from_sources(vars(args))
    except ValidationError as exc:
        raise _UserError(f"bad pseudonym key: {settings_problems(exc)}") from None


def _retention(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """--state-expiry-days, else $TOKENRADAR_STATE_EXPIRY_DAYS, else the worker's default."""
    from pydantic import ValidationError

    from tokenradar.schemas.settings import Retention, settings_problems

    try:
        return Retention.from_sources(vars(args))
    except ValidationError as exc:
        raise _UserError(f"bad setting: {settings_problems(exc)}") from None


def _reveal(args: argparse.Namespace) -> int:
    pseudonymiser = _pseudonymisation(args).pseudonymiser()
    if pseudonymiser is None:
        raise _UserError("reveal needs the pseudonym key the worker uses: "
                         "--pseudonym-key-file, or $TOKENRADAR_PSEUDONYM_KEY(_FILE)")
    candidates = list(args.user_ids)
    for path in args.candidates or ():
        try:
            text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _UserError(f"--candidates {path}: cannot read it "
                             f"({getattr(exc, 'strerror', None) or exc})") from None
        candidates += [line.strip() for line in text.splitlines() if line.strip()]
    if not candidates:
        raise _UserError("give candidate user ids: as arguments, or --candidates FILE")
    wanted = set(args.pseudonym or ())
    found = set()
    for user_id in dict.fromkeys(candidates):
        alias = pseudonymiser.pseudonym(user_id)
        if not wanted or alias in wanted:
            found.add(alias)
            print(f"{alias}\t{user_id}")
    for alias in sorted(wanted - found):
        print(f"tokenradar: {alias} is none of the {len(set(candidates)):,} candidates (an HMAC "
              "cannot be inverted: only a candidate list can reveal it), or was made with "
              "another key", file=sys.stderr)
    return 1 if wanted - found else 0


def _budgets(args: argparse.Namespace) -> int:
    from tokenradar.budgets import budget_standings

    if not args.input.is_file():
        raise _UserError(f"--input {args.input}: no such file")
    config = _load_config(args.config)
    if not config.budgets.any:
        raise _UserError(f"--config {args.config}: no budgets in it; add [budgets.teams] "
                         "(team = USD a month) or [budgets.users]")
    as_of, standings = budget_standings(args.input, config)
    print(f"budgets as of {as_of}, at the current pace:")
    for standing in standings:
        print("  " + standing.describe())
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from tokenradar.lab.evaluation_files import EvaluationInputError
    from tokenradar.lab.evaluation_text import run_evaluation
    from tokenradar.progress import CommandProgress

    _output(args.json_out, "--json-out")
    _output(args.verdicts_out, "--verdicts-out")
    reading = args.events is not None and args.events.is_file()  # the long part
    try:
        with CommandProgress("evaluate", args.events.stat().st_size if reading else None,
                             "MB of events", scale=1e-6) as progress:
            run_evaluation(args.labels, args.alerts, args.events, args.json_out,
                           progress=progress.update,
                           alerts_with_feedback=args.alerts_with_feedback,
                           verdicts_out=args.verdicts_out)
    except EvaluationInputError as exc:
        raise _UserError(str(exc)) from None
    return 0


def _simulate(args: argparse.Namespace) -> int:
    import os

    from tokenradar.lab.simulation import (
        SimulationSpec,
        build_organisation,
        iter_events,
        random_organisation,
        reporting_days,
        write_labels,
        write_simulation,
    )
    from tokenradar.progress import CommandProgress

    _output(args.out, "--out")
    _output(args.labels, "--labels")

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
    progress = CommandProgress("simulate", spec.days, "days")
    if args.out is not None:
        with progress:
            count = write_simulation(spec, args.out, args.labels, progress.update)
        print(f"wrote {count:,} events to {args.out}")
        return 0
    from tokenradar.schemas import WorkerSettings
    from tokenradar.streams.publish import produce_events

    broker = args.broker or os.environ.get("TOKENRADAR_BROKER")
    if not broker:
        raise _UserError("--topic needs --broker (or $TOKENRADAR_BROKER)")
    bootstrap = WorkerSettings(broker=broker).bootstrap_servers
    security = _security(args)
    with progress:
        count = produce_events(bootstrap, args.topic,
                               reporting_days(spec, iter_events(spec), progress.update),
                               security)
    if args.labels is not None:
        write_labels(args.labels, build_organisation(spec).labels)
    print(f"produced {count:,} events to {args.topic}")
    return 0


def _feedback(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from pydantic import AwareDatetime, TypeAdapter, ValidationError

    from tokenradar.alert_topic import AlertTopicError, alerts_topic, bootstrap_servers
    from tokenradar.feedback import (
        FeedbackError,
        alerts_in_file,
        alerts_on_topic,
        describe,
        feedback_topic,
        find_alert,
        send_verdict,
        verdict_on,
    )
    from tokenradar.schemas.feedback import parse_duration

    try:
        silence_for = parse_duration(args.silence_for)
    except ValueError as exc:
        raise _UserError(f"--for: {exc}") from None
    try:
        at = (datetime.now(UTC) if args.at is None
              else TypeAdapter(AwareDatetime).validate_python(args.at))
    except ValidationError:
        raise _UserError(f"--at {args.at}: give a time with an offset, such as "
                         "2026-11-24T09:15:00Z") from None
    _output(args.out, "--out")
    if args.alerts is not None and not args.alerts.is_file():
        raise _UserError(f"--alerts {args.alerts}: no such file")
    security = _security(args)
    try:
        servers = None
        if args.alerts is not None:
            alert = find_alert(args.alert_id, alerts_in_file(args.alerts), str(args.alerts))
        else:
            servers = bootstrap_servers(args.broker, security=security)
            topic = alerts_topic(args.alerts_topic)
            alert = find_alert(args.alert_id, alerts_on_topic(servers, topic, security),
                               f"the topic {topic}")
        verdict = verdict_on(alert, args.verdict, at, silence_for, args.note)
        if args.out is not None:
            with open(args.out, "a", encoding="utf-8") as out:
                out.write(verdict.model_dump_json(exclude_none=True) + "\n")
            print(f"{describe(verdict)}; appended to {args.out}")
            return 0
        servers = servers or bootstrap_servers(args.broker, security=security)
        topic = feedback_topic(args.topic)
        send_verdict(servers, topic, verdict, security)
    except (FeedbackError, AlertTopicError) as exc:
        raise _UserError(str(exc)) from None
    print(f"{describe(verdict)}; sent to {topic}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from tokenradar.schemas import AnomalyEvent, DeadLetter, TokenUsageEvent
    from tokenradar.schemas.feedback import FeedbackVerdict

    document = {
        "token-usage": TokenUsageEvent.model_json_schema(),
        "token-anomalies": AnomalyEvent.model_json_schema(),
        "token-usage.dlq": DeadLetter.model_json_schema(),
        "token-anomalies.feedback": FeedbackVerdict.model_json_schema(),
    }
    print(json.dumps(document, indent=2))
    return 0


def _config_check(args: argparse.Namespace) -> int:
    config = _load_config(args.file)
    print(f"{args.file}: OK (config_version {config.version})")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from tokenradar.lab.demo import run_demo
    from tokenradar.streams.broker import BrokerUnavailable

    try:
        return run_demo(seconds=args.seconds, users=args.users)
    except BrokerUnavailable as exc:
        raise _UserError(str(exc)) from None


def _broker(args: argparse.Namespace) -> int:
    from functools import partial

    from tokenradar.lab.local_broker import run_broker
    from tokenradar.streams.broker import BrokerUnavailable

    try:
        return run_broker(args.port, args.log_file, say=partial(print, flush=True))
    except BrokerUnavailable as exc:
        raise _UserError(str(exc)) from None


def _alerts_tail(args: argparse.Namespace) -> int:
    from tokenradar.alert_feed import AlertFilter
    from tokenradar.alert_topic import AlertTopicError, alerts_topic, bootstrap_servers
    from tokenradar.alerts_tail import tail_alerts

    security = _security(args)
    try:
        servers = bootstrap_servers(args.broker, security=security)
    except AlertTopicError as exc:
        raise _UserError(str(exc)) from None
    wanted = AlertFilter(min_severity=args.severity, kinds=args.kind or (),
                         teams=args.team or ())
    tail_alerts(servers, alerts_topic(args.topic), wanted, args.from_beginning, args.json,
                security=security)
    return 0


def _bridge(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from tokenradar.alert_topic import AlertTopicError, alerts_topic, bootstrap_servers
    from tokenradar.bridge import BridgeSettings, run_bridge

    try:
        settings = BridgeSettings.from_sources(vars(args))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'bridge'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors())
        raise _UserError(f"bad bridge setting: {problems}") from None
    security = _security(args)
    try:
        servers = bootstrap_servers(args.broker, security=security)
    except AlertTopicError as exc:
        raise _UserError(str(exc)) from None
    run_bridge(servers, alerts_topic(args.topic), settings, security)
    return 0
