"""Just enough SVG for the backtest report: scales, escaped elements, axis ticks.

No plotting library, so the report stays one self-contained file with no new
dependency. Every piece of text and every attribute value goes through
:func:`html.escape`.

Examples
--------
>>> element("text", "a < b", x=2.0, font_size=10)
'<text x="2" font-size="10">a &lt; b</text>'
>>> element("rect", title="3 < 4 events", width=5)
'<rect width="5"><title>3 &lt; 4 events</title></rect>'
>>> LogScale(1, 1000, 100, 0)(10)
66.66666666666667
"""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime, timedelta


class LinearScale:
    """Maps a value of [domain_low, domain_high] onto [range_low, range_high]."""

    def __init__(self, domain_low: float, domain_high: float, range_low: float,
                 range_high: float) -> None:
        self.domain_low = domain_low
        self.domain_high = domain_high if domain_high != domain_low else domain_low + 1.0
        self.range_low = range_low
        self.range_high = range_high

    def __call__(self, value: float) -> float:
        share = (value - self.domain_low) / (self.domain_high - self.domain_low)
        return self.range_low + share * (self.range_high - self.range_low)


class LogScale(LinearScale):
    """A :class:`LinearScale` on log10 of the value; values below the domain are clipped."""

    def __init__(self, domain_low: float, domain_high: float, range_low: float,
                 range_high: float) -> None:
        super().__init__(math.log10(domain_low), math.log10(domain_high), range_low, range_high)

    def __call__(self, value: float) -> float:
        return super().__call__(math.log10(max(value, 10.0 ** self.domain_low)))


def number(value: float) -> str:
    """A coordinate, short: one decimal, no trailing zero."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def element(tag: str, content: str = "", *, title: str | None = None,
            **attributes: object) -> str:
    """``<tag a="v">content</tag>``; ``font_size`` becomes ``font-size``. Content is escaped.

    ``title`` is the hover text: a ``<title>`` child, which SVG shows as a tooltip.
    """
    return _open(tag, attributes) + _title(title) + html.escape(content, quote=False) + f"</{tag}>"


def group(children: list[str], *, title: str | None = None, **attributes: object) -> str:
    """A ``<g>`` around already-rendered children (not escaped again); ``title`` as in
    :func:`element`, the hover text of every child."""
    return _open("g", attributes) + _title(title) + "".join(children) + "</g>"


def svg(children: list[str], width: float, height: float, label: str) -> str:
    """A complete inline ``<svg>`` with an accessible label."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{number(width)}" '
            f'height="{number(height)}" viewBox="0 0 {number(width)} {number(height)}" '
            f'role="img" aria-label="{html.escape(label)}">' + "".join(children) + "</svg>")


def _title(text: str | None) -> str:
    return "" if text is None else f"<title>{html.escape(text, quote=False)}</title>"


def _open(tag: str, attributes: dict[str, object]) -> str:
    parts = [tag]
    for name, value in attributes.items():
        if value is None:
            continue
        text = number(value) if isinstance(value, float) else str(value)
        parts.append(f'{name.rstrip("_").replace("_", "-")}="{html.escape(text)}"')
    return "<" + " ".join(parts) + ">"


def points(pairs: list[tuple[float, float]]) -> str:
    """The ``points`` attribute of a polyline or polygon."""
    return " ".join(f"{number(x)},{number(y)}" for x, y in pairs)


def decade_ticks(low: float, high: float) -> list[float]:
    """Powers of ten from the one at or below ``low`` to the one at or above ``high``.

    >>> decade_ticks(30, 2000)
    [10.0, 100.0, 1000.0, 10000.0]
    """
    first = math.floor(math.log10(max(low, 1e-12)))
    last = max(first + 1, math.ceil(math.log10(max(high, 1e-12))))
    return [10.0 ** exponent for exponent in range(first, last + 1)]


def day_ticks(start: float, end: float, most: int) -> list[float]:
    """UTC midnights (epoch seconds) in [start, end], every n days so at most ``most``."""
    first = datetime.fromtimestamp(start, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = max(1, math.ceil((end - start) / 86_400.0))
    step = max(1, math.ceil(days / max(1, most)))
    ticks, day = [], first
    while day.timestamp() <= end:
        if day.timestamp() >= start:
            ticks.append(day.timestamp())
        day += timedelta(days=step)
    return ticks


def short_count(value: float) -> str:
    """1, 10, 100, 1k, 10k, 1M: tick labels for counts and tokens.

    >>> [short_count(v) for v in (1.0, 1000.0, 25_000.0, 3e6)]
    ['1', '1k', '25k', '3M']
    """
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def log_y_axis(y: LogScale, left: float, right: float, label: str, ticks: list[float]) -> str:
    """Grid lines and labels at ``ticks`` (powers of ten), and the axis title, rotated."""
    parts = []
    for tick in ticks:
        parts.append(element("line", x1=left, x2=right, y1=y(tick), y2=y(tick), stroke="#e4e4e4"))
        parts.append(element("text", short_count(tick), x=left - 6, y=y(tick) + 4,
                             text_anchor="end", class_="tick"))
    middle = (y(ticks[0]) + y(ticks[-1])) / 2
    at = left - 52
    parts.append(element("text", label, x=at, y=middle, class_="label", text_anchor="middle",
                         transform=f"rotate(-90 {number(at)} {number(middle)})"))
    return group(parts)


def time_axis(x: LinearScale, start: float, end: float, top: float, baseline: float) -> str:
    """A UTC date axis along ``baseline``, with faint day lines up to ``top``."""
    parts = [element("line", x1=x.range_low, x2=x.range_high, y1=baseline, y2=baseline,
                     stroke="#999")]
    for tick in day_ticks(start, end, most=14):
        parts.append(element("line", x1=x(tick), x2=x(tick), y1=top, y2=baseline,
                             stroke="#f0f0f0"))
        parts.append(element("line", x1=x(tick), x2=x(tick), y1=baseline, y2=baseline + 4,
                             stroke="#999"))
        parts.append(element("text", datetime.fromtimestamp(tick, UTC).strftime("%a %d %b"),
                             x=x(tick), y=baseline + 16, text_anchor="middle", class_="tick"))
    parts.append(element("text", "event time (UTC)", x=x.range_high, y=baseline + 30,
                         text_anchor="end", class_="label"))
    return group(parts)
