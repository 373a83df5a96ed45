"""The engine: one event in, a calibrated score and zero or more alerts out.

Both the Kafka worker and ``replay`` call :meth:`ScoringEngine.score_event`, so a
backtest predicts production. Everything is computed from event time, never from
the clock, so the same events and config give the same alerts, with the same ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from detectors.base import ClosedBucket, Detector, Finding, Observation
from detectors.drift import DriftDetector
from detectors.rate import RateDetector
from detectors.spike import SpikeDetector
from detectors.state import Incident, UserState
from schemas import MAX_EVENT_IDS, AnomalyEvent, DetectorConfig, TokenUsageEvent

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class EventScore:
    """What scoring one event gave: the highest detector score and any new alerts."""

    score: float
    alerts: list[AnomalyEvent] = field(default_factory=list)
    duplicate: bool = False


class ScoringEngine:
    """The configured detectors, shared by all users; per-user numbers live in UserState.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> engine = ScoringEngine(DetectorConfig())
    >>> state = engine.new_state("ana")
    >>> start = datetime(2026, 11, 2, 9, tzinfo=UTC)
    >>> def request(i, tokens):
    ...     return TokenUsageEvent(event_id=f"e{i}", user_id="ana", model="m",
    ...         timestamp=start + timedelta(minutes=7 * i), input_tokens=tokens,
    ...         output_tokens=300)
    >>> scores = [engine.score_event(state, request(i, 1000 + 10 * (i % 9)), start)
    ...           for i in range(60)]
    >>> result = engine.score_event(state, request(60, 250_000), start)
    >>> [(alert.kind, alert.feature) for alert in result.alerts]
    [('spike', 'tokens_per_request')]
    >>> engine.score_event(state, request(60, 250_000), start).duplicate
    True
    """

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.config_version = config.version
        self.spike = SpikeDetector(config.spike)
        candidates: list[tuple[bool, Detector]] = [
            (config.spike.enabled, self.spike),
            (config.drift.enabled, DriftDetector(config.drift)),
            (config.rate.enabled, RateDetector(config.rate)),
        ]
        self.detectors = [detector for enabled, detector in candidates if enabled]
        self._window_seconds = config.rate.window_minutes * 60.0
        self._cooldown_seconds = config.scoring.cooldown_minutes * 60.0

    def new_state(self, user_id: str) -> UserState:
        return UserState(user_id=user_id)

    def score_event(self, state: UserState, event: TokenUsageEvent,
                    detected_at: datetime) -> EventScore:
        """Score ``event`` against ``state`` (the same user's), then learn from it."""
        if state.seen_before(event.event_id, self.config.scoring.dedupe_event_ids):
            return EventScore(score=0.0, duplicate=True)
        observation = self._observe(state, event)
        best = 0.0
        alerts = []
        for detector in self.detectors:
            finding = detector.observe(self._slot(state, detector), observation)
            if finding is None:
                continue
            best = max(best, finding.score)
            if finding.score >= self.config.scoring.alert_threshold:
                alert = self._open_incident(state, detector, finding, observation, detected_at)
                if alert is not None:
                    alerts.append(alert)
        return EventScore(score=best, alerts=alerts)

    def hour_band(self, state: UserState) -> tuple[float, float, float] | None:
        """(expected, low, high) tokens in an active hour for this user, for plots.

        The band is the baseline's mean +/- two standard deviations (log scale);
        None until the user has an hourly baseline.
        """
        if self.spike.name not in state.slots:
            return None
        baseline = self._slot(state, self.spike).per_hour
        if baseline.count < 2:
            return None
        spread = 2.0 * baseline.std
        return (10.0 ** baseline.mean, 10.0 ** (baseline.mean - spread),
                10.0 ** (baseline.mean + spread))

    def _observe(self, state: UserState, event: TokenUsageEvent) -> Observation:
        """Advance the user's running hour and rate window to this event."""
        time = event.epoch_seconds
        tokens = event.total_tokens
        state.events += 1
        if event.team is not None:
            state.team = event.team
        state.recent_ids.append(event.event_id)

        closed_hour = None
        hour_start = time - time % HOUR
        if hour_start > state.hour_start:
            if state.hour_requests:
                closed_hour = ClosedBucket(state.hour_start, state.hour_tokens,
                                           state.hour_requests)
            state.hour_start, state.hour_tokens, state.hour_requests = hour_start, 0, 0
        state.hour_tokens += tokens
        state.hour_requests += 1

        closed_window = None
        window_start = time - time % self._window_seconds
        if window_start > state.window_start:
            if state.window_requests:
                closed_window = ClosedBucket(state.window_start, state.window_tokens,
                                             state.window_requests)
            state.window_start, state.window_tokens, state.window_requests = window_start, 0, 0
        state.window_tokens += tokens
        state.window_requests += 1

        return Observation(
            event=event, time=time, tokens=tokens, hour_tokens=state.hour_tokens,
            hour_requests=state.hour_requests, window_requests=state.window_requests,
            closed_hour=closed_hour, closed_window=closed_window,
        )

    def _slot(self, state: UserState, detector: Detector) -> Any:
        slot = state.slots.get(detector.name)
        if slot is None:
            slot = state.slots[detector.name] = detector.new_slot()
        elif isinstance(slot, list):
            slot = state.slots[detector.name] = detector.restore(slot)
        return slot

    def _open_incident(self, state: UserState, detector: Detector, finding: Finding,
                       observation: Observation, detected_at: datetime) -> AnomalyEvent | None:
        """An alert for a new incident; None while the user's incident of this kind is open."""
        event = observation.event
        incident = state.incidents.get(detector.kind)
        quiet_until = observation.time + self._cooldown_seconds
        if incident is not None and observation.time < incident.until:
            incident.until = max(incident.until, quiet_until)
            return None
        alert_id = _alert_id(state.user_id, detector, event.event_id, self.config_version)
        state.incidents[detector.kind] = Incident(alert_id, quiet_until)
        event_ids = [event.event_id] if finding.single_event else list(state.recent_ids)
        return AnomalyEvent(
            alert_id=alert_id, user_id=state.user_id, team=state.team, kind=detector.kind,
            detector=detector.name, score=round(finding.score, 4),
            severity=self.config.severity_of(finding.score), event_time=event.timestamp,
            detected_at=detected_at, feature=finding.feature,
            observed=round(finding.observed, 2), expected=round(finding.expected, 2),
            event_ids=event_ids[-MAX_EVENT_IDS:], explanation=finding.explanation,
            config_version=self.config_version,
        )


def _alert_id(user_id: str, detector: Detector, event_id: str, config_version: str) -> str:
    """Same user, detector, triggering event and config: same id, on any worker or replay."""
    key = "\x1f".join((user_id, detector.kind, detector.name, event_id, config_version))
    return hashlib.sha256(key.encode()).hexdigest()[:24]
