"""Incidents and their alerts: one incident, one alert, escalated when it worsens.

A finding above its threshold opens an incident for the user and kind, with a new
``alert_id``, or re-publishes the open one under its id when it got more severe; the
same user and kind then stay quiet for the cooldown. An identity past its budget of
new alerts gets one ``noisy_identity`` summary instead. A team's finding is the
team's incident, keyed ``team:<team>``. Ids hash the user, kind, detector, triggering
event and configuration, so the worker and ``replay`` give the same ids.

Examples
--------
>>> from datetime import UTC, datetime
>>> from tokenradar.detectors.base import Finding
>>> from tokenradar.detectors.state import UserState
>>> from tokenradar.schemas import DetectorConfig, TokenUsageEvent
>>> desk = IncidentDesk(DetectorConfig())
>>> at = datetime(2026, 11, 2, 9, tzinfo=UTC)
>>> event = TokenUsageEvent(event_id="e1", user_id="ana", model="m", timestamp=at,
...                         input_tokens=9, output_tokens=1)
>>> state = UserState(user_id="ana")
>>> def alert(score):
...     finding = Finding(score, "tokens", 9.0, 1.0, "why", single_event=True)
...     return desk.user_alert(state, "spike", "spike", 240.0, finding, event,
...                            event.epoch_seconds, at)
>>> first, same, worse = alert(0.7), alert(0.7), alert(0.9)
>>> first.severity, same, worse.severity, worse.alert_id == first.alert_id
('medium', None, 'high', True)
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import datetime

from tokenradar.detectors.base import Finding
from tokenradar.detectors.state import Incident, UserState
from tokenradar.detectors.team import TeamState, team_key
from tokenradar.schemas import MAX_EVENT_IDS, AnomalyEvent, DetectorConfig, TokenUsageEvent
from tokenradar.schemas.kinds import NOISY_IDENTITY
from tokenradar.schemas.sections import DetectorSection

SCORE_DIGITS = 4
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


class IncidentDesk:
    """Opens, escalates and quiets incidents, and writes their alerts, for one
    configuration (its severity bands, cooldowns and noisy-identity budget)."""

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.config_version = config.version

    def cooldown_seconds(self, section: DetectorSection) -> float:
        """A detector's own quiet time after an alert, else the configuration's."""
        minutes = section.cooldown_minutes
        if minutes is None:
            minutes = self.config.scoring.cooldown_minutes
        return float(minutes) * 60.0

    def user_alert(self, state: UserState, kind: str, detector: str, cooldown: float,
                   finding: Finding, event: TokenUsageEvent, time: float,
                   detected_at: datetime) -> AnomalyEvent | None:
        """A new incident's alert, an update of an open one that got worse, or None."""
        severity = self.config.severity_of(round(finding.score, SCORE_DIGITS))
        incident = state.incidents.get(kind)
        if incident is not None and time < incident.until:
            incident.until = max(incident.until, time + cooldown)
            if SEVERITY_RANK[severity] <= incident.severity:
                return None
            incident.severity = SEVERITY_RANK[severity]
            alert_id = incident.alert_id
        else:
            if self._too_noisy(state, kind, time):
                return self._noisy_identity_alert(state, finding, event, time, detected_at)
            alert_id = alert_id_of(state.user_id, kind, detector, event.event_id,
                                   self.config_version)
            state.incidents[kind] = Incident(alert_id, time + cooldown, SEVERITY_RANK[severity])
        event_ids = [event.event_id] if finding.single_event else list(state.recent_ids)
        return self.alert(alert_id, state.user_id, state.team, kind, detector, finding, event,
                          event_ids, detected_at)

    def team_alert(self, team: TeamState, kind: str, cooldown: float, finding: Finding,
                   event: TokenUsageEvent, time: float,
                   detected_at: datetime) -> AnomalyEvent | None:
        """The team's alert, unless its incident is still open."""
        if team.incident is not None and time < team.incident.until:
            return None
        key = team_key(team.team)
        alert_id = alert_id_of(key, kind, kind, event.event_id, self.config_version)
        team.incident = Incident(alert_id, time + cooldown)
        return self.alert(alert_id, key, team.team, kind, kind, finding, event,
                          [event.event_id], detected_at)

    def _too_noisy(self, state: UserState, kind: str, time: float) -> bool:
        """Has the user raised their window's worth of new alerts, or been summarised as
        noisy within the window? Else count this one."""
        noisy = self.config.noisy_identity
        if not noisy.enabled:
            return False
        summary = state.incidents.get(NOISY_IDENTITY.name)
        if summary is not None and time < summary.until:
            return True
        since = time - noisy.window_days * 86_400.0
        state.alert_times = [entry for entry in state.alert_times if entry[0] > since]
        if len(state.alert_times) >= noisy.max_alerts:
            return True
        state.alert_times.append((time, kind))
        return False

    def _noisy_identity_alert(self, state: UserState, finding: Finding, event: TokenUsageEvent,
                              time: float, detected_at: datetime) -> AnomalyEvent | None:
        """One summary for an identity past its alerts' budget; then quiet for the window."""
        kind = NOISY_IDENTITY.name
        summary = state.incidents.get(kind)
        if summary is not None and time < summary.until:
            return None
        noisy = self.config.noisy_identity
        alert_id = alert_id_of(state.user_id, kind, kind, event.event_id, self.config_version)
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
        return self.alert(alert_id, state.user_id, state.team, kind, kind, noted, event,
                          list(state.recent_ids), detected_at)

    def alert(self, alert_id: str, user_id: str, team: str | None, kind: str, detector: str,
              finding: Finding, event: TokenUsageEvent, event_ids: list[str],
              detected_at: datetime) -> AnomalyEvent:
        """The alert message of an incident, as published."""
        score = round(finding.score, SCORE_DIGITS)
        return AnomalyEvent(
            alert_id=alert_id, user_id=user_id, team=team, kind=kind, detector=detector,
            score=score, severity=self.config.severity_of(score),
            event_time=event.timestamp, detected_at=detected_at, feature=finding.feature,
            observed=round(finding.observed, 2), expected=round(finding.expected, 2),
            event_ids=event_ids[-MAX_EVENT_IDS:], explanation=finding.explanation,
            config_version=self.config_version,
        )


def alert_id_of(user_id: str, kind: str, detector: str, event_id: str,
                config_version: str) -> str:
    """Same user, detector, triggering event and config: same id, on any worker or replay."""
    key = "\x1f".join((user_id, kind, detector, event_id, config_version))
    return hashlib.sha256(key.encode()).hexdigest()[:24]
