"""deploy/prometheus-rules.yml reads metrics the worker exports, and the burst rule counts
incidents (new alerts and escalations to critical), not every re-publication.
Runs Prometheus' own ``promtool`` (Debian's ``prometheus`` package; ``.ci/run`` installs it)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from tokenradar.streams.metrics import WorkerMetrics

RULES = Path(__file__).parents[3] / "deploy" / "prometheus-rules.yml"
LABELS = 'job="tokenradar",instance="w1"'


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is needed (apt-get install -y prometheus; .ci/run does)"
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)


def test_every_metric_the_rules_read_is_exported_by_the_worker() -> None:
    exported = {metric.name + ("_total" if metric.type == "counter" else "")
                for metric in WorkerMetrics().registry.collect()}
    read = set(re.findall(r"\b(tokenradar_\w+)", RULES.read_text()))
    assert read and read <= exported, read - exported


def test_burst_rule_counts_incidents_that_reached_critical_not_republications(
        tmp_path: Path) -> None:
    # 40 spike incidents opened critical and 20 escalated to it in the hour: 60 > 50, fires.
    # Drift: 30 opened critical, each re-published 3 times at lower severities: stays quiet.
    series = {
        f'tokenradar_alerts_total{{kind="spike",severity="critical",{LABELS}}}': "0+4x10",
        f'tokenradar_alert_escalations_total{{kind="spike",severity="critical",{LABELS}}}':
            "0+2x10",
        f'tokenradar_alerts_total{{kind="drift",severity="critical",{LABELS}}}': "0+3x10",
        f'tokenradar_alert_escalations_total{{kind="drift",severity="critical",{LABELS}}}':
            "0+0x10",
        f'tokenradar_alert_escalations_total{{kind="drift",severity="high",{LABELS}}}':
            "0+9x10",
    }
    test = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "6m",
            "input_series": [{"series": name, "values": values}
                             for name, values in series.items()],
            "alert_rule_test": [{
                "eval_time": "60m", "alertname": "TokenradarCriticalAnomalyBurst",
                "exp_alerts": [{
                    "exp_labels": {"kind": "spike", "severity": "warning"},
                    "exp_annotations": {
                        "summary": "60 critical spike anomalies in the last hour",
                        "description": "Check for an organisation-wide change before paging "
                                       "owners; see config_version in the alerts."}}]}],
        }],
    }
    path = tmp_path / "rules-test.yml"
    path.write_text(json.dumps(test))  # JSON is YAML
    done = _promtool("test", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
