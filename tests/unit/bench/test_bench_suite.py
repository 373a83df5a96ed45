"""The benchmark suite's own arithmetic (bench/): what it offers, and how it judges a
figure against its target. The measurements themselves are benchmarks, never tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

import bench_latency  # noqa: E402
import bench_scale  # noqa: E402
import pipelines  # noqa: E402
import suite  # noqa: E402


def test_a_target_is_met_only_when_every_round_meets_it() -> None:
    def met(mine: list[float], baseline: list[float]) -> str:
        return suite.Row("f", mine, "base", baseline, target=">= 3x",
                         meets=lambda _, ratio: ratio >= 3).cells()[-1]

    assert met([300, 310], [100, 100]) == "yes"
    assert met([300, 200], [100, 100]) == "1/2"
    assert met([200, 200], [100, 100]) == "no"


def test_a_row_shows_each_round_and_its_ratio() -> None:
    cells = suite.Row("events/s", [1000, 2000], "bare", [500, 500]).cells()
    assert cells[1:4] == ["1,000 / 2,000", "500 / 500 bare", "2.00 / 4.00x"]
    assert cells[-1] == ""  # no target: a figure to read


def test_the_latency_bench_spikes_a_known_share_of_events_each_of_another_user() -> None:
    history, steady, spikes = bench_latency.offered_events(
        users=50, history=3, steady=2000, spike_share=0.01)
    assert len(history) == 150 and len(steady) == 2000
    spiked = [e for e in steady if e["event_id"] in spikes]
    # one in 100, but the next event where the 100th's user has spiked already
    assert len(spiked) in (19, 20)
    assert len({e["user_id"] for e in spiked}) == len(spiked)
    usual = max(int(e["input_tokens"]) for e in steady if e["event_id"] not in spikes)
    assert min(int(e["input_tokens"]) for e in spiked) > 10 * usual / 5


def test_the_baselines_exponentially_weighted_state_follows_its_input() -> None:
    state = None
    for _ in range(400):
        state = pipelines.ew_update(state, 1000.0)
    assert state == pytest.approx((1000.0, 0.0, 400))
    mean, variance, count = pipelines.ew_update(state, 2000.0)
    assert mean == pytest.approx(1000 + pipelines.EW_WEIGHT * 1000) and variance > 0


def test_nothing_is_lost_only_when_every_message_is_scored_or_dead_lettered() -> None:
    sent = 1000 + bench_scale.INVALID
    assert bench_scale.Accounting(sent, 1000, bench_scale.INVALID, 40).nothing_lost
    assert not bench_scale.Accounting(sent, 999, bench_scale.INVALID, 40).nothing_lost
    assert not bench_scale.Accounting(sent, 1001, bench_scale.INVALID - 1, 0).nothing_lost
