"""The backtest report: bounded memory, the users it picks, and a self-contained page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tokenradar.lab.evaluate import IncidentLabel, evaluate
from tokenradar.lab.report import PLOTTED_USERS, ReportBuilder
from tokenradar.schemas import AnomalyEvent, TokenUsageEvent

T0 = datetime(2026, 11, 10, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)


def event(number: int, user: str, at: datetime, tokens: int = 1000) -> TokenUsageEvent:
    return TokenUsageEvent(event_id=f"e{number}", user_id=user, team="core", model="m",
                           timestamp=at, input_tokens=tokens, output_tokens=0)


def alert(user: str, at: datetime, kind: str = "spike", score: float = 0.9,
          explanation: str = "x") -> AnomalyEvent:
    return AnomalyEvent(alert_id=f"{user}-{kind}-{at.timestamp()}", user_id=user, team="core",
                        kind=kind, detector=kind, score=score, severity="high", event_time=at,
                        detected_at=at, feature="tokens_per_hour", observed=1.0, expected=1.0,
                        event_ids=["e"], explanation=explanation, config_version="cfg")


def builder() -> ReportBuilder:
    return ReportBuilder(alert_threshold=0.6, config_version="cfg-1", source="events.jsonl")


def plotted_users(page: str) -> list[str]:
    section = page[page.index("Usage of selected users"):]
    return re.findall(r"<h3>([^<]*)</h3>", section)


def test_report_is_self_contained_and_escapes_user_ids(tmp_path: Path) -> None:
    report = builder()
    nasty = '<script>alert("x")</script>&'
    report.observe(event(1, nasty, T0), 0.1, [], None)
    report.observe(event(2, nasty, T0 + HOUR, 90_000), 0.95, [alert(nasty, T0 + HOUR)],
                   (1000.0, 500.0, 2000.0))

    report.write(tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")

    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    # nothing is fetched: no external reference of any kind (the SVG namespace is a name)
    without_namespace = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    for reference in ("http://", "https://", "src=", "href=", "url(", "@import"):
        assert reference not in without_namespace
    assert page.count("<svg") == 2  # the score distribution and the one user


def test_an_alert_mark_tells_its_explanation_on_hover() -> None:
    # A creep of output per request does not show in the plotted tokens per hour: the
    # mark's title says what rose.
    report = builder()
    report.observe(event(1, "ana", T0), 0.1, [], None)
    said = "Usage has risen over 5 active days to 1,277 output tokens per request, 1.64x <x>"
    report.observe(event(2, "ana", T0 + HOUR), 0.7,
                   [alert("ana", T0 + HOUR, "creep", 0.7, said)], None)

    titles = re.findall(r"<title>([^<]*)</title>", report.render())

    escaped = said.replace("<", "&lt;").replace(">", "&gt;")
    assert f"creep 0.70 at 2026-11-10 10:00: {escaped}" in titles


def test_builder_keeps_hourly_buckets_not_events() -> None:
    report = builder()
    for number in range(600):  # 200 events in each of three hours
        report.observe(event(number, "ana", T0 + number * timedelta(seconds=18)), 0.0, [], None)

    series = report.users["ana"]
    assert len(series.hours) == 3
    assert list(series.hour_tokens) == [200_000.0, 200_000.0, 200_000.0]
    assert report.events == 600


def test_late_event_is_added_to_its_own_hour() -> None:
    report = builder()
    report.observe(event(1, "ana", T0 + 30 * timedelta(minutes=1), 10), 0.0, [], None)
    report.observe(event(2, "ana", T0 + 3 * HOUR, 20), 0.0, [], (5.0, 1.0, 9.0))
    report.observe(event(3, "ana", T0 + 45 * timedelta(minutes=1), 30), 0.0, [], None)
    report.observe(event(4, "ana", T0 - HOUR, 40), 0.0, [], None)

    series = report.users["ana"]
    hours = [datetime.fromtimestamp(h, UTC).hour for h in series.hours]
    assert hours == [8, 9, 12]
    assert list(series.hour_tokens) == [40.0, 40.0, 20.0]
    assert list(series.bands[6:9]) == [5.0, 1.0, 9.0]


def test_score_histogram_counts_every_event_and_marks_the_threshold() -> None:
    report = builder()
    for number, score in enumerate((0.0, 0.0, 0.5, 0.99, 1.0)):
        report.observe(event(number, "ana", T0), score, [], None)

    assert sum(report.score_bins) == 5
    assert report.score_bins[0] == 2 and report.score_bins[-1] == 2
    assert "alert threshold 0.6" in report.render()


def test_report_plots_alerted_and_labelled_users_then_two_quiet_ones() -> None:
    report = builder()
    for index in range(10):  # user-9 uses the most, user-0 the least
        user = f"user-{index}"
        for hour in range(3):
            report.observe(event(100 * index + hour, user, T0 + hour * HOUR, 100 * (index + 1)),
                           0.0, [], None)
    report.observe(event(999, "user-3", T0 + 4 * HOUR), 0.9, [alert("user-3", T0 + 4 * HOUR)],
                   None)
    missed = IncidentLabel("incident-001", "gaming", "user-7", "core", T0, T0 + HOUR)
    evaluation = evaluate([missed], [alert("user-3", T0 + 4 * HOUR)], active_user_days=10)

    page = report.render(evaluation)

    # the missed incident's user and the falsely alerted user, then two quiet users
    # around the median of total tokens among the other eight (user-4 and user-5)
    assert plotted_users(page) == ["user-7", "user-3", "user-4 (quiet user, for contrast)",
                                   "user-5 (quiet user, for contrast)"]
    assert "gaming incident-001: missed" in page
    assert "Evaluation against labels" in page


def test_plotted_users_are_capped_and_the_evaluation_is_left_out_without_labels() -> None:
    report = builder()
    for index in range(30):
        user = f"user-{index:02d}"
        report.observe(event(index, user, T0), 0.9, [alert(user, T0)], None)

    page = report.render()

    assert len(plotted_users(page)) == PLOTTED_USERS  # no quiet user is left to add
    assert "Evaluation against labels" not in page


def test_population_shift_span_is_drawn_on_members_with_the_team_alert() -> None:
    report = builder()
    report.observe(event(1, "ana", T0), 0.1, [], None)
    report.observe(event(2, "bob", T0 + HOUR), 0.7,
                   [alert("team:core", T0 + HOUR, "population_shift")], None)
    shift = IncidentLabel("incident-009", "population_shift", "team:core", "core", T0,
                          T0 + 5 * HOUR, members=("ana", "bob"))
    evaluation = evaluate([shift], [alert("team:core", T0 + HOUR, "population_shift")], 2)

    page = report.render(evaluation)

    assert plotted_users(page)[:2] == ["ana", "bob"]
    assert page.count("population_shift incident-009: detected after 1.0 h") >= 2
    assert "population_shift (team) 0.90" in page


def test_hour_band_follows_the_users_hourly_baseline() -> None:
    from tokenradar.detectors import ScoringEngine
    from tokenradar.lab.report import hour_band
    from tokenradar.schemas import DetectorConfig

    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    assert hour_band(state) is None
    for number in range(30):  # one request of about 1,000 tokens an hour
        tokens = 900 + 50 * (number % 5)
        engine.score_event(state, event(number, "ana", T0 + number * HOUR, tokens), T0)
    band = hour_band(state)
    assert band is not None
    expected, low, high = band
    assert low < expected < high and 800 < expected < 1300
