"""deploy/prometheus*.yml pass promtool, the dashboard's queries are valid PromQL, every
metric that the rules or the dashboard name is one the worker exports, every metric of the
worker's own is on the dashboard, and the rules added for operators fire when they should
(``promtool test rules``) and stay quiet when they should not."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from tokenradar.streams.metrics import WorkerMetrics

ROOT = Path(__file__).parents[3]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "tokenradar.json"
# Names the worker's registry is responsible for; `up` and the like come from Prometheus.
OURS = re.compile(r"\b((?:tokenradar|process)_[a-z0-9_]+)\b")
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool; missing, it is a failure, not a skip: .ci/run installs it."""
    tool = shutil.which("promtool")
    assert tool, "promtool not found: apt-get install -y prometheus (.ci/run does)"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)


def rule_expressions() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus-rules.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"]
                   for target in panel.get("targets", [])]
    assert expressions, "the dashboard has no queries"
    return expressions


def exported_names() -> set[str]:
    """Every sample name the worker's registry exports (counters' _total, histograms'
    _bucket, _sum and _count included), built as the worker builds it."""
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.alerts.labels("spike", "high")  # labelled series appear once used
    metrics.dead_letters.labels("schema")
    return {sample.name for family in metrics.registry.collect() for sample in family.samples}


def worker_metrics_samples() -> dict[str, set[str]]:
    """Each of the worker's own metrics (``tokenradar_*``; ``process_*`` is the client
    library's) and the sample names it exports, labelled series included."""
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.dead_letters.labels("schema")  # the one labelled counter not exported at zero
    return {family.name: {sample.name for sample in family.samples}
            for family in metrics.registry.collect() if family.name.startswith("tokenradar_")}


def test_every_metric_of_the_worker_is_on_the_dashboard() -> None:
    named = {name for expression in dashboard_expressions()
             for name in OURS.findall(expression)}
    families = worker_metrics_samples()
    assert len(families) >= 17, sorted(families)  # the collection itself is not empty
    missing = sorted(family for family, samples in families.items() if not samples & named)
    assert missing == [], f"no dashboard panel reads {missing}"


def test_alert_rules_pass_promtool() -> None:
    result = promtool("check", "rules", str(DEPLOY / "prometheus-rules.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_passes_promtool_with_the_rules_loaded() -> None:
    result = promtool("check", "config", str(DEPLOY / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b1 rule files? found", result.stdout + result.stderr), result.stdout


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: rate(x[5m]\n")
    assert promtool("check", "rules", str(broken)).returncode != 0


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool has no bare expression check: each query becomes a recording rule."""
    rules = []
    for number, expression in enumerate(dashboard_expressions()):
        for variable, value in GRAFANA_VARIABLES.items():
            expression = expression.replace(variable, value)
        rules.append({"record": f"dashboard:query_{number}", "expr": expression})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_every_metric_named_is_exported_by_the_worker(source: str) -> None:
    expressions = rule_expressions() if source == "rules" else dashboard_expressions()
    named = {name for expression in expressions for name in OURS.findall(expression)}
    assert named, f"no tokenradar metric found in the {source}"
    assert named - exported_names() == set()


def test_dashboard_has_a_panel_for_each_thing_operators_watch() -> None:
    titles = " | ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    for topic in ("throughput", "lag", "batch time", "alerts by kind and severity",
                  "escalations", "verdicts", "silenced", "priced at the default",
                  "dead letters", "state size", "users held", "expired", "reorder buffers",
                  "stalls"):
        assert topic in titles, topic


LABELS = 'job="tokenradar",instance="w1"'


def rules_fire(tmp_path: Path, alertname: str, series: dict[str, str], eval_time: str,
               expected: list[dict[str, dict[str, str]]], interval: str = "1h") -> None:
    """``promtool test rules``: ``alertname`` fires at ``eval_time`` exactly as ``expected``
    (labels and annotations), given the input ``series`` (promtool's expanding notation)."""
    test = {
        "rule_files": [str(DEPLOY / "prometheus-rules.yml")],
        "evaluation_interval": interval,  # of the rules; days of data at 1m would be slow
        "tests": [{
            "interval": interval,
            "input_series": [{"series": name, "values": values}
                             for name, values in series.items()],
            "alert_rule_test": [{"eval_time": eval_time, "alertname": alertname,
                                 "exp_alerts": expected}],
        }],
    }
    path = tmp_path / "rules-test.yml"
    path.write_text(json.dumps(test))  # JSON is YAML
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


UNPRICED = f"tokenradar_unpriced_models_total{{{LABELS}}}"
UNPRICED_ALERT = {
    "exp_labels": {"instance": "w1", "severity": "warning"},
    "exp_annotations": {
        "summary": "tokenradar worker w1 priced 2 model(s) at [prices.default]",
        "description": "Costs of those models may be underestimated. The worker's log names "
                       "them (replay's summary too): add them to [prices] and restart the "
                       "workers."}}


@pytest.mark.parametrize(("values", "eval_time", "expected"), [
    ("0 0 1 2 2 2 2 2", "40m", [UNPRICED_ALERT]),  # 2 models seen, for 25 min: fires
    ("0 0 1 2 2 2 2 2", "20m", []),                # the first seen 10 min ago: not yet
    ("0 0 0 0 0 0 0 0", "40m", []),                # every model priced
    ("0 1 2 2 0 0 0 0", "40m", []),                # restarted with a fixed price table
], ids=["seen", "pending", "all-priced", "fixed-and-restarted"])
def test_unpriced_models_rule(tmp_path: Path, values: str, eval_time: str,
                              expected: list[dict[str, dict[str, str]]]) -> None:
    rules_fire(tmp_path, "TokenradarUnpricedModels", {UNPRICED: values}, eval_time,
               expected, interval="5m")


EXPIRED = f"tokenradar_users_expired_total{{{LABELS}}}"
HELD = f"tokenradar_users_held{{{LABELS}}}"
GROWING = "1000+1x4400"  # users held, every 5 min: 5,320 at day 15 against 3,304 at day 8
STOPPED = "0+1x2016 2016+0x2400"  # states expired until day 7, none since
EXPIRY_STOPPED_ALERT = {
    "exp_labels": {"severity": "warning"},
    "exp_annotations": {
        "summary": "No user state expired for 7 days while tokenradar holds 5.32k users "
                   "and counting",
        "description": "Sweeps run when a partition's newest event time reaches a new day: "
                       "check that event times advance and the worker's log for expiry "
                       "errors; a restart indexes the recovered states again."}}


@pytest.mark.parametrize(("expired", "held", "expected"), [
    (STOPPED, GROWING, [EXPIRY_STOPPED_ALERT]),
    ("0+1x4400", GROWING, []),     # states still expire: the growth is new users
    ("0+0x4400", GROWING, []),     # a young deployment: no state is old enough yet
    (STOPPED, "3000+0x4400", []),  # expiry stopped, but the table does not grow
], ids=["stopped-and-growing", "expiring", "young-deployment", "not-growing"])
def test_state_expiry_stopped_rule(tmp_path: Path, expired: str, held: str,
                                   expected: list[dict[str, dict[str, str]]]) -> None:
    rules_fire(tmp_path, "TokenradarStateExpiryStopped", {EXPIRED: expired, HELD: held},
               "360h", expected, interval="5m")


SCORING_ERRORS = f'tokenradar_dead_letters_total{{error_type="scoring_error",{LABELS}}}'
SCHEMA_ERRORS = f'tokenradar_dead_letters_total{{error_type="schema",{LABELS}}}'
SCORING_ERROR_ALERT = {
    "exp_labels": {"instance": "w1", "severity": "warning"},
    "exp_annotations": {
        "summary": "tokenradar worker w1 failed to score valid events (scoring_error)",
        "description": "A bug in the detectors: report it with the scoring_error dead "
                       "letters in token-usage.dlq (they name the exception type and the "
                       "message's topic, partition and offset)."}}


@pytest.mark.parametrize(("series", "eval_time", "expected"), [
    ({SCORING_ERRORS: "0 0 0 1 1 1 1"}, "20m", [SCORING_ERROR_ALERT]),  # one is enough
    ({SCORING_ERRORS: "0 0 0 1 1 1 1 1 1 1 1 1"}, "55m", []),  # none in the last 15 min
    ({SCORING_ERRORS: "0+0x6", SCHEMA_ERRORS: "0+50x6"}, "20m", []),  # producers' faults
], ids=["one-error", "quiet-since", "other-dead-letters"])
def test_scoring_errors_rule(tmp_path: Path, series: dict[str, str], eval_time: str,
                             expected: list[dict[str, dict[str, str]]]) -> None:
    rules_fire(tmp_path, "TokenradarScoringErrors", series, eval_time, expected,
               interval="5m")
