"""The context stage: one event into the user's running context, read as an Observation.

Every detector reads the same :class:`~tokenradar.detectors.base.Observation`, computed
once per event: the user's running buckets (hour, rate window, day), usual hours and
weekdays, recent prompt fingerprints and session, and their team's movement.

Examples
--------
>>> from datetime import UTC, datetime
>>> from tokenradar.detectors.state import UserState
>>> from tokenradar.schemas import TokenUsageEvent
>>> state = UserState(user_id="ana")
>>> def request(i, minute):
...     return TokenUsageEvent(event_id=f"e{i}", user_id="ana", model="m", input_tokens=900,
...         output_tokens=100, timestamp=datetime(2026, 11, 2, 9, minute, tzinfo=UTC))
>>> first = observe(state, request(1, 0), None, window_seconds=600.0)
>>> second = observe(state, request(2, 5), None, window_seconds=600.0)
>>> first.gap, second.gap, second.window_requests, second.repeated
(None, 300.0, 2, True)
"""

from __future__ import annotations

from tokenradar.detectors.base import Observation
from tokenradar.detectors.context import HOUR, YOUNG_PROFILE_DAYS, prompt_signature
from tokenradar.detectors.state import UserState
from tokenradar.detectors.team import TeamState
from tokenradar.schemas import TokenUsageEvent

EARLY_START_HOURS = 3
"""How far ahead of a person's usual hours their day may start early: a run that begins
within this of their working day is them at work early, not an agent left running."""


def observe(state: UserState, event: TokenUsageEvent, team_state: TeamState | None,
            window_seconds: float, learn_whole: bool = False) -> Observation:
    """Advance the user's context by ``event`` (``window_seconds``: the rate window's
    length) and say what it now reads, for the detectors; ``learn_whole``: the hour it
    closes is learned unclipped (a person called this user's busy hours normal)."""
    context = state.context
    time = event.epoch_seconds
    gap = time - context.last_time if context.last_time >= 0 else None
    state.remember_event(event.event_id)
    tokens = event.total_tokens
    closed_hour, closed_window, closed_day = context.advance_buckets(
        time, tokens, window_seconds, learn_whole)
    last_hour_tokens, last_hour_requests = context.last_hour()
    day_tokens, day_active_hours = context.running_day()
    usual_day_tokens = None if closed_day is None else context.learn_daily_level(closed_day)
    repeat_share, repeated = context.remember_fingerprint(
        event.prompt_fingerprint
        or prompt_signature(event.input_tokens, event.output_tokens))
    session_requests, session_first_input, session_most_input = (
        context.advance_session(event.session_id, event.model, event.input_tokens, time))
    if team_state is None:
        team_hours = None
        team_shift, team_shifting, team_rise = 0.0, False, 0.0
        team_levels_rise: list[float] = []
        team_per_request = team_per_hour = team_tools = None
        team_tool_days = 0
    else:
        # The team's hours are kept in its members' local time: a young member's evening
        # is judged by the team's evenings, wherever its members are. Only a young
        # profile reads them (``UsageContext.usual_activities``, ``activity_days``).
        team_local_hours = (team_state.working_hours()
                            if context.profile_days < YOUNG_PROFILE_DAYS else None)
        team_hours = None if team_local_hours is None else context.utc_hours(team_local_hours)
        team_shift = team_state.expected_shift()
        team_shifting = team_state.shifting(time)
        team_rise = team_state.rising_by()
        team_levels_rise = team_state.members_rise()
        team_per_request, team_per_hour = team_state.per_request, team_state.per_hour
        team_tools, team_tool_days = team_state.tools, team_state.tool_days
    usual_activity, usual_activity_nearby = context.usual_activities(time, 1, team_hours)

    def activity_ahead() -> float:
        # The hours 1 to EARLY_START_HOURS ahead: around the hour halfway there.
        return context.usual_activities(time + (EARLY_START_HOURS + 1) / 2 * HOUR,
                                        (EARLY_START_HOURS - 1) // 2, team_hours)[1]

    return Observation(
        event=event, time=time, tokens=tokens, gap=gap,
        hour_tokens=last_hour_tokens, hour_requests=last_hour_requests,
        window_requests=context.window.requests, closed_hour=closed_hour,
        closed_window=closed_window, closed_day=closed_day, repeat_share=repeat_share,
        repeated=repeated,
        session_requests=session_requests, session_first_input=session_first_input,
        session_most_input=session_most_input,
        usual_hourly_requests=context.hourly_requests,
        usual_activity=usual_activity,
        profile_days=context.profile_days,
        activity_days=context.activity_days(team_hours),
        round_the_clock=context.round_the_clock,
        usual_activity_nearby=usual_activity_nearby, usual_activity_ahead=activity_ahead,
        usual_day_tokens=usual_day_tokens, day_tokens=day_tokens,
        day_active_hours=day_active_hours, team_shift=team_shift,
        team_shifting=team_shifting, team_rise=team_rise, team_levels_rise=team_levels_rise,
        team_per_request=team_per_request,
        team_per_hour=team_per_hour, team_tools=team_tools, team_tool_days=team_tool_days,
    )
