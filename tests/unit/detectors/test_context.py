"""UsageContext: how often a user is active at an hour, as the behaviour detectors ask it."""

from __future__ import annotations

from datetime import UTC, datetime

from tokenradar.detectors.context import PROFILE_SCALE, UsageContext, prompt_signature

MONDAY = datetime(2026, 11, 16, tzinfo=UTC).timestamp()
HOUR = 3600.0


def _nine_to_five(days: int) -> UsageContext:
    """A profile learned from ``days`` days active at 09:00-16:59 UTC, every weekday."""
    context = UsageContext(profile_days=days, weekday_profile=[PROFILE_SCALE] * 7)
    context.hour_profile = [PROFILE_SCALE if 9 <= hour < 17 else 0 for hour in range(24)]
    return context


def test_an_hour_never_seen_is_about_one_in_n_plus_one() -> None:
    # A young profile cannot make an hour look rarer than it can know.
    assert _nine_to_five(days=3).usual_activity(MONDAY + 3 * HOUR) == 0.25
    assert _nine_to_five(days=19).usual_activity(MONDAY + 3 * HOUR) == 0.05
    assert _nine_to_five(days=19).usual_activity(MONDAY + 10 * HOUR) == 1.0


def test_around_looks_at_the_busiest_neighbouring_hour() -> None:
    context = _nine_to_five(days=19)
    # 08:00 borders the working day; 03:00 is the middle of the night either way.
    assert context.usual_activity(MONDAY + 8 * HOUR) == 0.05
    assert context.usual_activity(MONDAY + 8 * HOUR, around=1) == 1.0
    assert context.usual_activity(MONDAY + 3 * HOUR, around=1) == 0.05


def _advanced(context: UsageContext, minute: float, tokens: int) -> None:
    context.advance_buckets(MONDAY + minute * 60.0, tokens, window_seconds=600.0)


def test_a_burst_across_the_top_of_the_hour_is_counted_whole() -> None:
    context = UsageContext()
    for minute in (9 * 60 + 40, 9 * 60 + 50, 10 * 60 + 5, 10 * 60 + 20):
        _advanced(context, minute, 1000)
    assert context.last_hour() == (4000, 4)


def test_requests_older_than_the_hour_drop_out_and_a_late_one_still_counts() -> None:
    context = UsageContext()
    _advanced(context, 0, 5000)
    _advanced(context, 30, 1000)
    _advanced(context, 65, 200)  # the first slice is now over an hour old
    assert context.last_hour() == (1200, 2)
    _advanced(context, 45, 300)  # delivered late, but within the last hour
    assert context.last_hour() == (1500, 3)
    _advanced(context, 6 * 60, 7)  # hours later: only itself
    assert context.last_hour() == (7, 1)


def test_an_hour_far_above_the_pace_is_not_learned_in_full() -> None:
    # A burst must not raise the pace it is judged by as soon as its clock hour closes.
    context = UsageContext()
    for hour in range(40):
        for request in range(6):
            _advanced(context, hour * 60 + 5 + 8 * request, 1000)
    for request in range(60):
        _advanced(context, 40 * 60 + request, 1000)
    _advanced(context, 41 * 60 + 5, 1000)  # the burst's hour closes
    assert context.hourly_requests.mean < 6.5  # learned in full it would be ~8.7


def test_a_prompt_signature_matches_a_resent_prompt_not_a_different_one() -> None:
    resent = prompt_signature(5000, 300), prompt_signature(5020, 306)
    assert resent[0] == resent[1]
    assert prompt_signature(5000, 600) != resent[0]
    assert prompt_signature(7000, 300) != resent[0]
    # Input alone (an embedding has no answer) matches far too often by chance.
    assert prompt_signature(5000, 0) is None


def test_an_identity_active_around_the_clock_counts_its_days_and_is_known_as_a_machine() -> None:
    """Issue 13, item 3: its hours have no centre to set a local day by; were its offset
    to jump from day to day, each jump would close a day early (nine days in four)."""
    machine, person = UsageContext(), UsageContext()
    for minute in range(0, 4 * 24 * 60 + 12 * 60, 7):  # four days, and the fifth's morning
        _advanced(machine, minute, 1000)
        if 9 * 60 <= minute % (24 * 60) < 17 * 60:
            _advanced(person, minute, 1000)
    assert machine.profile_days == person.profile_days == 4
    assert machine.round_the_clock and not person.round_the_clock
