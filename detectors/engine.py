"""The engine: one event in, a calibrated score and zero or more alerts out.

Both the Kafka worker and ``replay`` call :meth:`ScoringEngine.score_event`, so a
backtest predicts production. Everything is computed from event time, never from
the clock, so the same events and config give the same alerts, with the same ids.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tokenradar.detectors.base import Detector, Finding, Observation
from tokenradar.detectors.context import prompt_signature
from tokenradar.detectors.creep import CreepDetector
from tokenradar.detectors.drift import DriftDetector
from tokenradar.detectors.gaming import GamingDetector
from tokenradar.detectors.new_pattern import NewPatternDetector
from tokenradar.detectors.rate import RateDetector
from tokenradar.detectors.renormalisation import Standing, standings
from tokenradar.detectors.runaway_agent import RunawayAgentDetector
from tokenradar.detectors.scripted_loop import ScriptedLoopDetector
from tokenradar.detectors.spike import SpikeDetector
from tokenradar.detectors.state import Incident, UserState
from tokenradar.detectors.team import TeamState, team_key
from tokenradar.schemas import (
    MAX_EVENT_IDS,
    AnomalyEvent,
    AnomalyKind,
    DetectorConfig,
    TokenUsageEvent,
)
from tokenradar.schemas.config import DetectorSection

SCORE_DIGITS = 4
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
BEHAVIOUR_RANK: dict[str, int] = {AnomalyKind.GAMING: 1, AnomalyKind.NEW_PATTERN: 2,
                                   AnomalyKind.SCRIPTED_LOOP: 3, AnomalyKind.RUNAWAY_AGENT: 3}
"""Kinds that name a behaviour, the more specific ranked higher. While one is open for
a user (or, for a runaway agent, building up), whatever else the same behaviour sets
off (a spike, a rate, the traits of a less specific behaviour: an agent left running
is also a new client, a burst on a stolen key also looks padded) is folded into it; a
more specific one still alerts."""


def routing_key(event: TokenUsageEvent) -> str:
    """Where an event is scored: with its team (whose members share a baseline), or alone.

    The worker keeps each routing key's events in one partition, in order, and replay
    keeps them in file order; so a team's state and its members' see the same events
    in the same order everywhere, and the alerts are the same.
    """
    return event.team if event.team is not None else event.user_id


@dataclass(frozen=True, slots=True)
class EventScore:
    """What scoring one event gave: the highest detector score and any alerts.

    An alert either opens an incident (a new ``alert_id``) or re-publishes an open one
    that got more severe (same ``alert_id``): ``escalations`` holds the ids of the latter,
    so alerts can be counted once per incident, escalations apart.
    """

    score: float
    alerts: list[AnomalyEvent] = field(default_factory=list)
    duplicate: bool = False
    escalations: frozenset[str] = frozenset()

    def escalates(self, alert: AnomalyEvent) -> bool:
        """Whether ``alert`` re-publishes an open incident rather than opening one."""
        return alert.alert_id in self.escalations


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
    ...         timestamp=start + timedelta(minutes=7 * i + i * i % 5), input_tokens=tokens,
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
        self.detectors = _build_detectors(config)
        """The enabled detectors, for every team without overrides."""
        self._overridden: dict[str, tuple[DetectorConfig, list[Detector]]] = {}

    def _setup_for(self, team: str | None) -> tuple[DetectorConfig, list[Detector]]:
        """The configuration and detectors in force for a team (its overrides applied)."""
        if team is None or team not in self.config.teams:
            return self.config, self.detectors
        setup = self._overridden.get(team)
        if setup is None:
            config = self.config.for_team(team)
            setup = self._overridden[team] = (config, _build_detectors(config))
        return setup

    def detectors_for(self, team: str | None) -> list[Detector]:
        """The enabled detectors, with the team's overrides applied."""
        return self._setup_for(team)[1]

    def new_state(self, user_id: str) -> UserState:
        return UserState(user_id=user_id)

    def new_team_state(self, team: str) -> TeamState:
        return TeamState(team=team)

    def score_event(self, state: UserState, event: TokenUsageEvent, detected_at: datetime,
                    team_state: TeamState | None = None) -> EventScore:
        """Score ``event`` against the user's ``state`` (and their team's), then learn."""
        scoring = self.config.scoring
        if state.seen.seen_before(event.event_id, event.epoch_seconds,
                                  scoring.dedupe_horizon_days, scoring.dedupe_event_ids):
            return EventScore(score=0.0, duplicate=True)
        if event.team is not None:
            state.team = event.team
        config, detectors = self._setup_for(state.team)
        observation = self._observe(state, event, team_state, config)
        allowlisted = self.config.allowlist.allows(state.user_id, state.team)
        findings = [(detector, detector.observe(self._slot(state, detector), observation))
                    for detector in detectors]
        best = max((finding.score for _, finding in findings if finding is not None),
                   default=0.0)
        if team_state is not None and not allowlisted:
            _record_day_maxima(state, team_state, observation, findings)
        alerting = [(detector, finding) for detector, finding in findings
                    if finding is not None and not allowlisted
                    and finding.score >= self._threshold(detector, finding, team_state)]
        alerts = []
        escalations: frozenset[str] = frozenset()
        if alerting:  # the rare event: only then ask which behaviours are building up
            open_ids = {incident.alert_id for incident in state.incidents.values()}
            # A behaviour still building up holds back the less specific alerts it explains.
            forming = max((BEHAVIOUR_RANK.get(detector.kind, 0) for detector in detectors
                           if detector.forming(state.slots[detector.name], observation)),
                          default=0)
            for detector, finding in alerting:
                if BEHAVIOUR_RANK.get(detector.kind, 0) >= forming:
                    alert = self._incident_alert(state, detector, finding, observation,
                                                 detected_at)
                    if alert is not None:
                        alerts.append(alert)
            # An alert with an incident's id already is that incident, escalated.
            escalations = frozenset(a.alert_id for a in alerts if a.alert_id in open_ids)
        if team_state is not None and not allowlisted:
            # Service accounts and batch jobs are not people: they stay out of the team.
            alerts.extend(self._learn_team(team_state, state, observation, config,
                                           detected_at))
        return EventScore(score=best, alerts=alerts, escalations=escalations)

    def calibration(self, teams: Iterable[TeamState]) -> list[Standing]:
        """Where each detector's threshold stands over these teams' days, and why."""
        calibration = self.config.calibration
        return standings((team.maxima for team in teams), self.config.scoring.alert_threshold,
                         calibration.false_alerts_per_1000_user_days,
                         min_days=calibration.min_user_days,
                         tail_days=calibration.tail_user_days)

    def hour_band(self, state: UserState) -> tuple[float, float, float] | None:
        """(expected, low, high) tokens in an active hour for this user, for plots.

        The band is the baseline's mean +/- two standard deviations (log scale);
        None until the user has an hourly baseline.
        """
        spike = next((d for d in self.detectors if isinstance(d, SpikeDetector)), None)
        if spike is None or spike.name not in state.slots:
            return None
        baseline = self._slot(state, spike).per_hour
        if baseline.count < 2:
            return None
        spread = 2.0 * baseline.std
        return (10.0 ** baseline.mean, 10.0 ** (baseline.mean - spread),
                10.0 ** (baseline.mean + spread))

    def _observe(self, state: UserState, event: TokenUsageEvent, team_state: TeamState | None,
                 config: DetectorConfig) -> Observation:
        context = state.context
        time = event.epoch_seconds
        gap = time - context.last_time if context.last_time >= 0 else None
        state.events += 1
        state.recent_ids.append(event.event_id)
        tokens = event.total_tokens
        closed_hour, closed_window, closed_day = context.advance_buckets(
            time, tokens, config.rate.window_minutes * 60.0)
        last_hour_tokens, last_hour_requests = context.last_hour()
        day_tokens, day_active_hours = context.running_day()
        usual_day_tokens = None if closed_day is None else context.learn_daily_level(closed_day)
        repeat_share, repeated = context.remember_fingerprint(
            event.prompt_fingerprint
            or prompt_signature(event.input_tokens, event.output_tokens))
        session_requests, session_first_input, session_most_input = (
            context.advance_session(event.session_id, event.model, event.input_tokens, time))
        team_hours = None if team_state is None else team_state.working_hours()
        team_shift = 0.0 if team_state is None else team_state.expected_shift()
        team_shifting = team_state is not None and team_state.shifting(time)
        return Observation(
            event=event, time=time, tokens=tokens, gap=gap,
            hour_tokens=last_hour_tokens, hour_requests=last_hour_requests,
            window_requests=int(context.window[2]), closed_hour=closed_hour,
            closed_window=closed_window, closed_day=closed_day, repeat_share=repeat_share,
            repeated=repeated,
            session_requests=session_requests, session_first_input=session_first_input,
            session_most_input=session_most_input,
            usual_hourly_requests=context.hourly_requests,
            usual_activity=context.usual_activity(time, team_hours=team_hours),
            profile_days=context.profile_days,
            usual_activity_nearby=context.usual_activity(time, around=1, team_hours=team_hours),
            usual_day_tokens=usual_day_tokens, day_tokens=day_tokens,
            day_active_hours=day_active_hours, team_shift=team_shift,
            team_shifting=team_shifting,
            team_per_request=team_state.per_request if team_state is not None else None,
            team_per_hour=team_state.per_hour if team_state is not None else None,
        )

    def _threshold(self, detector: Detector, finding: Finding,
                   team_state: TeamState | None) -> float:
        """The score at which ``detector`` alerts: the configured threshold, raised to
        where the team's own ordinary days would alert at the configured budget."""
        configured = self.config.scoring.alert_threshold
        calibration = self.config.calibration
        if finding.score < configured or team_state is None or not calibration.enabled:
            return configured
        return team_state.maxima.threshold(
            detector.name, configured, calibration.false_alerts_per_1000_user_days,
            min_days=calibration.min_user_days, tail_days=calibration.tail_user_days)

    def _slot(self, state: UserState, detector: Detector) -> Any:
        slot = state.slots.get(detector.name)
        if slot is None:
            slot = state.slots[detector.name] = detector.new_slot()
        elif isinstance(slot, list):
            slot = state.slots[detector.name] = detector.restore(slot)
        return slot

    def _incident_alert(self, state: UserState, detector: Detector, finding: Finding,
                        observation: Observation, detected_at: datetime) -> AnomalyEvent | None:
        """A new incident's alert, an update of an open one that got worse, or None."""
        kind = detector.kind
        time = observation.time
        rank = BEHAVIOUR_RANK.get(kind, 0)
        if any(k != kind and BEHAVIOUR_RANK.get(k, 0) >= max(rank, 1) and time < incident.until
               for k, incident in state.incidents.items()):
            return None
        severity = self.config.severity_of(round(finding.score, SCORE_DIGITS))
        quiet_until = time + self._cooldown_seconds(detector.config)
        incident = state.incidents.get(kind)
        if incident is not None and time < incident.until:
            incident.until = max(incident.until, quiet_until)
            if SEVERITY_RANK[severity] <= incident.severity:
                return None
            incident.severity = SEVERITY_RANK[severity]
            alert_id = incident.alert_id
        else:
            if self._too_noisy(state, kind, time):
                return self._noisy_identity_alert(state, finding, observation, detected_at)
            alert_id = _alert_id(state.user_id, detector.kind, detector.name,
                                 observation.event.event_id, self.config_version)
            state.incidents[kind] = Incident(alert_id, quiet_until, SEVERITY_RANK[severity])
        event_ids = ([observation.event.event_id] if finding.single_event
                     else list(state.recent_ids))
        return self._alert(alert_id, state.user_id, state.team, detector.kind, detector.name,
                           finding, observation.event, event_ids, detected_at)

    def _too_noisy(self, state: UserState, kind: str, time: float) -> bool:
        """Has the user raised their window's worth of new alerts, or been summarised as
        noisy within the window? Else count this one."""
        noisy = self.config.noisy_identity
        if not noisy.enabled:
            return False
        summary = state.incidents.get(AnomalyKind.NOISY_IDENTITY)
        if summary is not None and time < summary.until:
            return True
        since = time - noisy.window_days * 86_400.0
        state.alert_times = [entry for entry in state.alert_times if entry[0] > since]
        if len(state.alert_times) >= noisy.max_alerts:
            return True
        state.alert_times.append((time, kind))
        return False

    def _noisy_identity_alert(self, state: UserState, finding: Finding,
                              observation: Observation,
                              detected_at: datetime) -> AnomalyEvent | None:
        """One summary for an identity past its alerts' budget; then quiet for the window."""
        time = observation.time
        kind = AnomalyKind.NOISY_IDENTITY
        summary = state.incidents.get(kind)
        if summary is not None and time < summary.until:
            return None
        noisy = self.config.noisy_identity
        alert_id = _alert_id(state.user_id, kind, kind, observation.event.event_id,
                             self.config_version)
        state.incidents[kind] = Incident(alert_id, time + noisy.window_days * 86_400.0)
        kinds = Counter(entry[1] for entry in state.alert_times)
        listed = ", ".join(f"{count} {name}" for name, count in sorted(kinds.items()))
        noted = Finding(
            score=finding.score, feature="alerts_in_window",
            observed=float(len(state.alert_times) + 1), expected=float(noisy.max_alerts),
            explanation=(
                f"This identity has raised {len(state.alert_times) + 1} alerts within "
                f"{noisy.window_days:g} days ({listed}, now {finding.feature}): more than a "
                "person's usage plausibly does. If it is a machine account, allowlist it; "
                f"its further alerts are held for {noisy.window_days:g} days."),
        )
        return self._alert(alert_id, state.user_id, state.team, kind, kind, noted,
                           observation.event, list(state.recent_ids), detected_at)

    def _learn_team(self, team: TeamState, state: UserState, observation: Observation,
                    user_config: DetectorConfig, detected_at: datetime) -> list[AnomalyEvent]:
        """Pool the member's usage into the team; a population shift alert when due."""
        team.see_member(state.user_id)
        team.per_request.update(math.log10(observation.tokens + 1))
        if observation.closed_hour is not None:
            team.per_hour.update(math.log10(observation.closed_hour.tokens + 1))
        config = user_config.population_shift
        day, usual = observation.closed_day, observation.usual_day_tokens
        context = state.context
        finding = None
        if day is not None:
            team.learn_member_hours(day.hours_mask)
        if day is not None and usual is not None:
            finding = team.learn_member_day(int(day.start), day.tokens, usual, config)
        finding = finding or team.advance(context.local_day(observation.time),
                                          context.local_hour(observation.time), config)
        if (finding is None or not config.enabled
                or finding.score < self.config.scoring.alert_threshold
                or team.team in self.config.allowlist.teams):
            return []
        time = observation.time
        if team.incident is not None and time < team.incident.until:
            return []
        key = team_key(team.team)
        alert_id = _alert_id(key, AnomalyKind.POPULATION_SHIFT, "population_shift",
                             observation.event.event_id, self.config_version)
        team.incident = Incident(alert_id, time + self._cooldown_seconds(config))
        return [self._alert(alert_id, key, team.team, AnomalyKind.POPULATION_SHIFT,
                            "population_shift", finding, observation.event,
                            [observation.event.event_id], detected_at)]

    def _cooldown_seconds(self, section: DetectorSection) -> float:
        """A detector's own quiet time after an alert, else the configuration's."""
        minutes = section.cooldown_minutes
        if minutes is None:
            minutes = self.config.scoring.cooldown_minutes
        return float(minutes) * 60.0

    def _alert(self, alert_id: str, user_id: str, team: str | None, kind: str, name: str,
               finding: Finding, event: TokenUsageEvent, event_ids: list[str],
               detected_at: datetime) -> AnomalyEvent:
        return AnomalyEvent(
            alert_id=alert_id, user_id=user_id, team=team, kind=kind, detector=name,
            score=round(finding.score, SCORE_DIGITS),
            severity=self.config.severity_of(round(finding.score, SCORE_DIGITS)),
            event_time=event.timestamp, detected_at=detected_at, feature=finding.feature,
            observed=round(finding.observed, 2), expected=round(finding.expected, 2),
            event_ids=event_ids[-MAX_EVENT_IDS:], explanation=finding.explanation,
            config_version=self.config_version,
        )


def _record_day_maxima(state: UserState, team: TeamState, observation: Observation,
                       findings: list[tuple[Detector, Finding | None]]) -> None:
    """Keep each detector's highest score of the member's day; when the day closes, add
    it (0 for a detector that found nothing) to the team's sketch of ordinary days."""
    if observation.closed_day is not None:
        for detector, _ in findings:
            team.maxima.add(detector.name, state.day_maxima.get(detector.name, 0.0))
        state.day_maxima = {}
    for detector, finding in findings:
        if finding is not None and finding.score > state.day_maxima.get(detector.name, 0.0):
            state.day_maxima[detector.name] = finding.score


def _build_detectors(config: DetectorConfig) -> list[Detector]:
    candidates: list[Detector] = [
        SpikeDetector(config.spike), DriftDetector(config.drift), RateDetector(config.rate),
        GamingDetector(config.gaming), ScriptedLoopDetector(config.scripted_loop),
        RunawayAgentDetector(config.runaway_agent), NewPatternDetector(config.new_pattern),
        CreepDetector(config.creep),
    ]
    return [detector for detector in candidates if detector.config.enabled]


def _alert_id(user_id: str, kind: str, detector: str, event_id: str, config_version: str) -> str:
    """Same user, detector, triggering event and config: same id, on any worker or replay."""
    key = "\x1f".join((user_id, kind, detector, event_id, config_version))
    return hashlib.sha256(key.encode()).hexdigest()[:24]
