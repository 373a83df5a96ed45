"""The scoring core: per-user state, River-based detectors, calibration, the engine.

Pure Python + River: no Kafka, no Faust, no Prometheus, no environment, no clock.
The worker and ``replay`` both call :class:`ScoringEngine`, so a backtest predicts
production.
"""

from detectors.engine import EventScore, ScoringEngine
from detectors.state import UserState

__all__ = ["EventScore", "ScoringEngine", "UserState"]
