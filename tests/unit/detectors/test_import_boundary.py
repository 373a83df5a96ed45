"""Imports point one way: the scoring core must not pull in Kafka, Faust or Prometheus,
and the runtime must not pull in the lab."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ["faust", "aiokafka", "kafka", "prometheus_client"]
LAB = ["tokenradar.lab"]
"""What engineers use to study the detectors, and nobody needs in production."""


def _loaded_after(imports: str, watched: list[str]) -> list[str]:
    """Which of ``watched`` a fresh interpreter has loaded after running ``imports``."""
    probe = (f"import json, sys\n{imports}"
             f"print(json.dumps(sorted(n for n in {watched!r} if n in sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    return list(json.loads(done.stdout))


def test_importing_detectors_and_schemas_loads_no_streaming_or_metrics_library() -> None:
    imports = "import tokenradar.detectors.engine, tokenradar.schemas.config_file\n"
    assert _loaded_after(imports, FORBIDDEN) == []


def test_the_runtime_never_imports_the_lab() -> None:
    # Every module of schemas, detectors and streams, and the CLI and replay: the lab's
    # commands import it lazily, inside the command.
    imports = (
        "import pkgutil, importlib\n"
        "import tokenradar.schemas, tokenradar.detectors, tokenradar.streams\n"
        "for package in (tokenradar.schemas, tokenradar.detectors, tokenradar.streams):\n"
        "    for module in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        importlib.import_module(module.name)\n"
        "import tokenradar.cli, tokenradar.replay\n"
        "tokenradar.cli._parser()\n"
    )
    assert _loaded_after(imports, LAB) == []
