"""Progress of long commands: a bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from tokenradar.progress import CommandProgress


def test_on_a_terminal_a_bar_is_drawn_and_ends_full() -> None:
    out = io.StringIO()
    with CommandProgress("replay x", 200.0, "MB", stream=out, terminal=True) as progress:
        progress.update(50.0, "12 alerts")
    drawn = out.getvalue()
    assert "\x1b[" in drawn and "━" in drawn  # rich's bar, coloured
    assert "replay x" in drawn and "12 alerts" in drawn
    assert "100%" in drawn.rsplit("\r", 1)[-1]


def test_off_a_terminal_plain_lines_at_most_every_few_seconds() -> None:
    out = io.StringIO()
    with CommandProgress("simulate", 10.0, "days", stream=out, every_seconds=3600) as progress:
        for day in range(10):
            progress.update(day, f"{day} events")
    assert out.getvalue() == ""  # not yet time for a line
    with CommandProgress("simulate", None, "days", stream=out, every_seconds=0) as progress:
        progress.update(2.5)
    assert out.getvalue() == "simulate: 2.5 days\n"


def test_a_stream_that_is_not_a_terminal_gets_no_bar() -> None:
    assert not CommandProgress("x", 1.0, "MB", stream=io.StringIO()).terminal
