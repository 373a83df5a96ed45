"""deploy/prometheus*.yml pass promtool, the dashboard's queries are valid PromQL, and
every metric that the rules or the dashboard name is one the worker exports."""

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
                  "dead letters", "state size", "stalls"):
        assert topic in titles, topic
