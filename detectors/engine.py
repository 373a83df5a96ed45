"""The engine: one event in, a calibrated score and zero or more alerts out.

Both the Kafka worker and ``replay`` call :meth:`ScoringEngine.score_event`, so a
backtest predicts production. Everything is computed from event time, never from
the clock, so the same events and config give the same alerts, with the same ids.

Scoring an event is six stages, each its own function, in this order:

1. **dedupe** (:func:`is_duplicate`): a redelivered event is scored once;
2. **context** (:func:`tokenradar.detectors.observation.observe`): the user's running
   context advances and is read as an Observation;
3. **detectors** (:func:`run_detectors`): each enabled detector scores it and learns
   (learning whole what a person's verdict called usual, or nothing in a calendar
   window that stops learning: :mod:`tokenradar.detectors.verdicts`);
4. **calibration** (:func:`record_day_maxima`, :meth:`ScoringEngine.threshold`): the
   team's ordinary days set the score at which each detector alerts;
5. **incidents** (:func:`tokenradar.detectors.precedence.folded`, ``held_back``): which
   alert wins and which is held back; a kind silenced by a verdict or a calendar window
   is dropped first, as if its detector had found nothing;
6. **alerts** (:class:`tokenradar.detectors.incidents.IncidentDesk`): a new incident's
   alert, or an escalation, with its estimated cost (:mod:`tokenradar.detectors.spend`);
   then the team learns the member (:func:`learn_team`) and its detectors may raise the
   team's own alert;
7. **budgets** (:meth:`ScoringEngine.budget_alerts`): the request's cost goes to its
   team's and user's monthly budgets, and a forecast that runs out within the month is
   a ``budget_burn`` alert (:mod:`tokenradar.detectors.budget`).

The request's cost (its ``cost_usd``, else the price table's) is known from the start.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tokenradar.detectors import precedence
from tokenradar.detectors.base import Detector, Finding, Observation, Slot, TeamDetector
from tokenradar.detectors.budget import BudgetBurn, BudgetState, budget_finding
from tokenradar.detectors.context import digest32
from tokenradar.detectors.creep import CreepSlot
from tokenradar.detectors.incidents import SCORE_DIGITS, SEVERITY_RANK, IncidentDesk, alert_id_of
from tokenradar.detectors.observation import observe
from tokenradar.detectors.registry import Detectors, build_detectors
from tokenradar.detectors.renormalisation import Standing, standings
from tokenradar.detectors.spend import Pricing, priced
from tokenradar.detectors.state import UserState
from tokenradar.detectors.team import POOL_FADING, TeamState, team_key, tool_key
from tokenradar.detectors.verdicts import Calendar, VerdictBook, silence_alerts
from tokenradar.schemas import AnomalyEvent, DetectorConfig, TokenUsageEvent
from tokenradar.schemas.kinds import BUDGET_BURN, CREEP, RATE, SPIKE

Findings = list[tuple[Detector, Finding | None]]
"""What the detectors stage gives: each detector with its finding, if any."""


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
    silenced: tuple[tuple[str, str], ...] = ()
    """(kind, reason) of each alert a verdict or a calendar window silenced."""

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
        built = build_detectors(config)
        self.detectors = built.users
        """The enabled detectors, for every team without overrides."""
        self.team_detectors = built.teams
        self.desk = IncidentDesk(config)
        self._overridden: dict[str, tuple[DetectorConfig, Detectors, float]] = {}
        self._window_seconds = rate_window_seconds(config)
        self._any_budgets = config.budgets.any
        allowlist = config.allowlist
        self._allowlist = allowlist if allowlist.users or allowlist.teams else None
        """None when nobody is allowlisted: the common case asks nothing per event."""
        self.calendar = Calendar(config.calendar)
        self.pricing = Pricing(config.prices)
        self.budgets = BudgetBurn(config.budgets)

    def _setup_for(self, team: str | None) -> tuple[DetectorConfig, Detectors, float]:
        """The configuration and detectors in force for a team (its overrides applied),
        and its rate window's length in seconds."""
        if team is None or team not in self.config.teams:
            return (self.config, Detectors(self.detectors, self.team_detectors),
                    self._window_seconds)
        setup = self._overridden.get(team)
        if setup is None:
            config = self.config.for_team(team)
            setup = self._overridden[team] = (config, build_detectors(config),
                                              rate_window_seconds(config))
        return setup

    def new_state(self, user_id: str) -> UserState:
        return UserState(user_id=user_id)

    def new_team_state(self, team: str) -> TeamState:
        return TeamState(team=team)

    def score_event(self, state: UserState, event: TokenUsageEvent, detected_at: datetime,
                    team_state: TeamState | None = None,
                    verdicts: VerdictBook | None = None) -> EventScore:
        """Score ``event`` against the user's ``state`` (and their team's), then learn;
        ``verdicts``: those given on the routing key's alerts (``detectors.verdicts``)."""
        if is_duplicate(state, event, self.config):
            return EventScore(score=0.0, duplicate=True)
        if event.team is not None:
            state.team = event.team
        config, detectors, window_seconds = self._setup_for(state.team)
        cost = self.pricing.cost_of(event)
        state.spend.learn(cost, event.total_tokens)
        quiet = self.calendar.quiet_at(verdicts, state.user_id, state.team,
                                       event.epoch_seconds)
        # A person said this user's spikes are normal: their busy hours' pace is learned
        # whole, as spike learns their sizes, or it would keep judging them rare.
        observation = observe(state, event, team_state, window_seconds,
                              learn_whole=SPIKE.name in quiet.by_verdict)
        if quiet.by_verdict:
            observation = dataclasses.replace(observation, accepted=quiet.by_verdict)
        findings = run_detectors(detectors.users, state, observation, quiet.frozen)
        best = 0.0
        for _, finding in findings:
            if finding is not None and finding.score > best:
                best = finding.score
        # Service accounts and batch jobs are scored, but never alerted on, and they are
        # not people: they stay out of the team, as does an identity learned to run around
        # the clock (a machine's every hour would pass for the team's working hours).
        allowlisted = (self._allowlist is not None
                       and self._allowlist.allows(state.user_id, state.team))
        taught = None if allowlisted or observation.round_the_clock else team_state
        if taught is not None:
            record_day_maxima(state, taught, observation, findings)
        alerting: list[tuple[Detector, Finding]] = []
        silenced: list[tuple[str, str]] = []
        configured = self.config.scoring.alert_threshold
        if best >= configured and not allowlisted:  # below it, no finding can alert
            alerting = [(detector, finding) for detector, finding in findings
                        if finding is not None
                        and finding.score >= self.threshold(detector, finding, team_state)]
            silenced = [(detector.kind, reason) for detector, _ in alerting
                        if (reason := quiet.reason(detector.kind)) is not None]
        if silenced:  # as if the detector had found nothing: no incident, no alert
            alerting = [(d, f) for d, f in alerting if quiet.reason(d.kind) is None]
        alerts: list[AnomalyEvent] = []
        escalations: frozenset[str] = frozenset()
        if alerting:  # the rare event: only then ask which behaviours are building up
            alerts, escalations = self._user_alerts(state, detectors.users, alerting,
                                                    observation, detected_at, cost)
        if taught is not None:
            learn_team(taught, state, observation)
            alerts.extend(self._team_alerts(taught, state, detectors.teams, observation,
                                            detected_at))
        if self._any_budgets:
            burns, updated = self.budget_alerts(state, team_state, event, cost, detected_at)
            alerts.extend(burns)
            escalations |= updated
        # A summary of a noisy identity, or a team's alert, is silenced for its own id.
        alerts, more = silence_alerts(alerts, self.calendar, verdicts, observation.time)
        return EventScore(score=best, alerts=alerts, escalations=escalations,
                          silenced=tuple(silenced + more))

    def cost_of(self, event: TokenUsageEvent) -> float:
        """USD of a request: its own ``cost_usd``, else its tokens at the price table."""
        return self.pricing.cost_of(event)

    def take_unpriced_models(self) -> list[str]:
        """Models priced at the table's default since the last call, each once per engine:
        the worker logs and counts them, ``replay`` notes them."""
        return self.pricing.take_unpriced()

    def budget_alerts(self, state: UserState, team_state: TeamState | None,
                      event: TokenUsageEvent, cost: float,
                      detected_at: datetime) -> tuple[list[AnomalyEvent], frozenset[str]]:
        """The budgets stage: the team's and the user's budgets take the request's cost;
        a ``budget_burn`` alert (new, or re-published under its id) when a forecast runs
        out within the month. Allowlists do not apply: service accounts spend money too."""
        budgets = self.config.budgets
        owners: list[tuple[BudgetState, float, str, str]] = []
        if team_state is not None and team_state.team in budgets.teams:
            team = team_state.team
            team_state.budget = team_state.budget or BudgetState()
            owners.append((team_state.budget, budgets.teams[team], team_key(team),
                           f"Team {team}"))
        if state.user_id in budgets.users:
            state.budget = state.budget or BudgetState()
            owners.append((state.budget, budgets.users[state.user_id], state.user_id,
                           f"User {state.user_id}"))
        alerts, updated = [], set()
        for budget_state, budget, owner, whose in owners:
            forecast = self.budgets.observe(budget_state, budget, event.epoch_seconds, cost)
            if forecast is None or forecast.exhaustion_day is None:
                continue
            finding = budget_finding(whose, forecast)
            finding = dataclasses.replace(
                finding, score=max(finding.score, self.config.scoring.alert_threshold))
            severity = SEVERITY_RANK[self.config.severity_of(round(finding.score, SCORE_DIGITS))]
            new_id = alert_id_of(owner, BUDGET_BURN.name, BUDGET_BURN.name, event.event_id,
                                 self.config_version)
            decided = self.budgets.update(budget_state, forecast, severity, new_id)
            if decided is None:
                continue
            alert_id, republished = decided
            if republished:
                updated.add(alert_id)
            alert = self.desk.alert(alert_id, owner, state.team, BUDGET_BURN.name,
                                    BUDGET_BURN.name, finding, event, [event.event_id],
                                    detected_at)
            alerts.append(alert.model_copy(update={
                "observed_cost": round(forecast.projected, 2),
                "expected_cost": round(forecast.budget, 2),
                "exhaustion_date": forecast.exhaustion_date}))
        return alerts, frozenset(updated)

    def calibration(self, teams: Iterable[TeamState]) -> list[Standing]:
        """Where each detector's threshold stands over these teams' days, and why."""
        calibration = self.config.calibration
        return standings((team.maxima for team in teams), self.config.scoring.alert_threshold,
                         calibration.false_alerts_per_1000_user_days,
                         min_days=calibration.min_user_days,
                         tail_days=calibration.tail_user_days,
                         ceiling=calibration.max_threshold)

    def threshold(self, detector: Detector, finding: Finding,
                  team_state: TeamState | None) -> float:
        """The score at which ``detector`` alerts: the configured threshold, raised to
        where the team's own ordinary days would alert at the configured budget."""
        configured = self.config.scoring.alert_threshold
        calibration = self.config.calibration
        if finding.score < configured or team_state is None or not calibration.enabled:
            return configured
        return team_state.maxima.threshold(
            detector.name, configured, calibration.false_alerts_per_1000_user_days,
            min_days=calibration.min_user_days, tail_days=calibration.tail_user_days,
            ceiling=calibration.max_threshold)

    def _user_alerts(self, state: UserState, detectors: list[Detector],
                     alerting: Sequence[tuple[Detector, Finding]],
                     observation: Observation, detected_at: datetime, cost: float
                     ) -> tuple[list[AnomalyEvent], frozenset[str]]:
        """The alerts of the findings above threshold that are neither held back nor
        folded (:mod:`tokenradar.detectors.precedence`); and which of them escalate."""
        open_ids = {incident.alert_id for incident in state.incidents.values()}
        forming = precedence.forming_rank(detectors, state.slots, observation)
        alerts = []
        for detector, finding in alerting:
            if (precedence.held_back(detector.kind, forming)
                    or precedence.folded(detector.kind, state.incidents, observation.time)):
                continue
            alert = self.desk.user_alert(
                state, detector.kind, detector.name,
                self.desk.cooldown_seconds(detector.config), finding, observation.event,
                observation.time, detected_at)
            if alert is not None:
                alerts.append(priced(alert, finding, state.spend, cost))
        # An alert with an incident's id already is that incident, escalated.
        return alerts, frozenset(a.alert_id for a in alerts if a.alert_id in open_ids)

    def _team_alerts(self, team: TeamState, member: UserState, detectors: list[TeamDetector],
                     observation: Observation, detected_at: datetime) -> list[AnomalyEvent]:
        """Each team detector learns the member; the team's alert when one finds the team
        as a whole anomalous (not for an allowlisted team, nor a detector switched off)."""
        time = observation.time
        local_day, local_hour = member.context.local_day(time), member.context.local_hour(time)
        alerts = []
        for detector in detectors:
            finding = detector.observe_member(team, observation, local_day, local_hour)
            # A team's finding is its detector's decision, not a score against the
            # members' threshold: a team is judged once a working day, and its own test
            # (population_shift.min_z) sets how rarely it reports.
            if (finding is None or not detector.config.enabled
                    or team.team in self.config.allowlist.teams):
                continue
            alert = self.desk.team_alert(team, detector.kind,
                                         self.desk.cooldown_seconds(detector.config), finding,
                                         observation.event, time, detected_at)
            if alert is not None:
                alerts.append(alert)
        return alerts


def rate_window_seconds(config: DetectorConfig) -> float:
    """The rate window's length, where the user's running context cuts its windows."""
    return config.section(RATE).window_minutes * 60.0


def is_duplicate(state: UserState, event: TokenUsageEvent, config: DetectorConfig) -> bool:
    """The dedupe stage: has the user sent this ``event_id`` already (within the horizon)?
    Else remember it."""
    scoring = config.scoring
    return state.seen.seen_before(event.event_id, event.epoch_seconds,
                                  scoring.dedupe_horizon_days, scoring.dedupe_event_ids)


def run_detectors(detectors: Iterable[Detector], state: UserState,
                  observation: Observation, frozen: frozenset[str] = frozenset()) -> Findings:
    """The detectors stage: each detector scores the observation against its slot of the
    user's state, then learns from it; a detector of a ``frozen`` kind (a calendar window
    that stops learning) has its numbers put back as they were."""
    findings: Findings = []
    slots = state.slots
    for detector in detectors:
        slot = slots.get(detector.name)
        if slot is None or not isinstance(slot, Slot):
            slot = detector_slot(state, detector)
        if not frozen or detector.kind not in frozen:
            findings.append((detector, detector.observe(slot, observation)))
            continue
        kept = copy.deepcopy(slot)
        findings.append((detector, detector.observe(slot, observation)))
        state.slots[detector.name] = kept
    return findings


def detector_slot(state: UserState, detector: Detector) -> Any:
    """The detector's numbers for this user: new, restored from storage, or live."""
    slot = state.slots.get(detector.name)
    if slot is None:
        slot = state.slots[detector.name] = detector.new_slot()
    elif not isinstance(slot, Slot):  # as stored: read when first asked for
        slot = state.slots[detector.name] = detector.restore(slot)
    return slot


def record_day_maxima(state: UserState, team: TeamState, observation: Observation,
                      findings: Findings) -> None:
    """The calibration stage's learning: keep each detector's highest score of the
    member's day; when the day closes, add it (0 for a detector that found nothing) to
    the team's sketch of ordinary days."""
    if observation.closed_day is not None:
        for detector, _ in findings:
            team.maxima.add(detector.name, state.day_maxima.get(detector.name, 0.0))
        state.day_maxima = {}
    for detector, finding in findings:
        if finding is not None and finding.score > state.day_maxima.get(detector.name, 0.0):
            state.day_maxima[detector.name] = finding.score


def learn_team(team: TeamState, member: UserState, observation: Observation) -> None:
    """Pool a member's usage into the team: its baselines for new joiners' cold start,
    the models and clients it uses, and the hours it works in."""
    event = observation.event
    member_digest = digest32(member.user_id)
    team.learn_tool(member_digest, tool_key("model", event.model))
    if event.client is not None:
        team.learn_tool(member_digest, tool_key("client", event.client))
    team.per_request.update(math.log10(observation.tokens + 1), POOL_FADING)
    if observation.closed_hour is not None:
        team.per_hour.update(math.log10(observation.closed_hour.tokens + 1), POOL_FADING)
    if observation.closed_day is not None:
        team.learn_member_hours(member.context.local_mask(observation.closed_day.hours_mask))
        creep = member.slots.get(CREEP.name)
        if isinstance(creep, CreepSlot):
            team.learn_member_rises(int(observation.closed_day.start), creep.rises())
        team.tool_days += 1
