"""The scoring core: per-user state, the detectors, calibration, the engine.

Pure Python, its state typed records (msgspec): no Kafka, no Faust, no Prometheus, no
environment, no clock.
The worker and ``replay`` both call :class:`ScoringEngine`, so a backtest predicts
production.
"""

from tokenradar.detectors.engine import EventScore, ScoringEngine, routing_key
from tokenradar.detectors.state import UserState
from tokenradar.detectors.team import TeamState

__all__ = ["EventScore", "ScoringEngine", "TeamState", "UserState", "routing_key"]
