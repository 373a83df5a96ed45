"""How far a long command is (``simulate``, ``replay``, ``evaluate``), on stderr.

On a terminal a rich progress bar; otherwise (a log file, CI, a pipe) a plain line every
few seconds, with no escape codes or carriage returns. The work itself only calls a
:data:`ProgressHook` with how much is done and a short note, as often as it likes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

ProgressHook = Callable[[float, str], None]
"""``hook(done, note)``: ``done`` in the command's unit (bytes read, days simulated)."""

PLAIN_EVERY_SECONDS = 2.0
"""How often a plain progress line is written when not on a terminal."""


class CommandProgress:
    """A command's progress; use as a context manager, pass :meth:`update` as the hook.

    Parameters
    ----------
    label
        What is being done, e.g. ``"replay events.jsonl"``.
    total
        How much there is to do, in the unit of ``done`` (None when unknown).
    unit
        The unit's name for plain lines, e.g. ``"MB"``; ``scale`` converts to it.
    terminal
        Draw a bar (default: when ``stream`` is a terminal).

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with CommandProgress("replay", 4e6, "MB", scale=1e-6, stream=out,
    ...                      every_seconds=0) as progress:
    ...     progress.update(1e6, "10 alerts")
    >>> out.getvalue()
    'replay: 1.0 of 4.0 MB (25%), 10 alerts\\n'
    """

    def __init__(self, label: str, total: float | None, unit: str, scale: float = 1.0,
                 stream: TextIO | None = None, terminal: bool | None = None,
                 every_seconds: float | None = None) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.scale = scale
        self.stream = sys.stderr if stream is None else stream
        self.terminal = _is_terminal(self.stream) if terminal is None else terminal
        self.every_seconds = PLAIN_EVERY_SECONDS if every_seconds is None else every_seconds
        self._bar: Any = None
        self._task: Any = None
        self._last_line = time.monotonic()

    def __enter__(self) -> CommandProgress:
        if self.terminal:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            console = Console(file=self.stream, force_terminal=True)
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TaskProgressColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                                 TextColumn("{task.fields[note]}"), console=console)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, note="")
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._bar is not None:
            if exc_type is None and self.total is not None:  # done: show it whole
                self._bar.update(self._task, completed=self.total)
            self._bar.stop()

    def update(self, done: float, note: str = "") -> None:
        """Record progress; cheap enough to call for every item."""
        if self._bar is not None:
            self._bar.update(self._task, completed=done, note=note)
            return
        now = time.monotonic()
        if now - self._last_line < self.every_seconds:
            return
        self._last_line = now
        amount = f"{done * self.scale:,.1f}"
        if self.total:
            amount += (f" of {self.total * self.scale:,.1f} {self.unit} "
                       f"({100 * done / self.total:.0f}%)")
        else:
            amount += f" {self.unit}"
        print(f"{self.label}: {amount}" + (f", {note}" if note else ""), file=self.stream,
              flush=True)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
