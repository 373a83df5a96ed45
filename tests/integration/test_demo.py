"""``tokenradar demo``: alerts and a summary, and nothing left running afterwards."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_shows_alerts_and_a_summary_and_stops_what_it_started(broker_url: str) -> None:
    env = {**os.environ, "TOKENRADAR_BROKER": broker_url}
    done = subprocess.run(
        [sys.executable, "-m", "tokenradar", "demo", "--seconds", "15"],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.search(r"ALERT \w+ +\w+", out), out
    assert "summary after" in out
    assert re.search(r"dead-lettered +3\b", out), out
    caught = re.search(r"injected incidents caught (\d+) of (\d+):", out)
    assert caught and 0 < int(caught.group(1)) <= int(caught.group(2)), out
    listed = re.findall(r"^\[[ \d.]+s\]     \w+ +\S+ +(caught by \w+ after \S+ \w+|MISSED)$", out,
                        re.MULTILINE)
    assert len(listed) == int(caught.group(2)), out
    worker_pid = int(re.search(r"worker: pid (\d+)", out).group(1))  # type: ignore[union-attr]
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)
