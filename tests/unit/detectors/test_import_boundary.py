"""Imports point one way: the scoring core must not pull in Kafka, Faust or Prometheus."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ["faust", "aiokafka", "kafka", "prometheus_client"]


def test_importing_detectors_and_schemas_loads_no_streaming_or_metrics_library() -> None:
    probe = (
        "import json, sys\n"
        "import detectors, schemas, detectors.engine, schemas.config_file\n"
        f"print(json.dumps(sorted(n for n in {FORBIDDEN!r} if n in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout) == []
