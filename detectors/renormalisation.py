"""Renormalisation: each detector's threshold set by what the organisation's own days look like.

A detector's score is the surprise of an observation under a model of the user's
history. On an organisation whose people do not behave as the model assumes (long
agent sessions, machine accounts, heavy tails), ordinary days reach "one in a
million" far more often than one in a million: a fixed threshold then alerts at a
rate nobody chose. Following Elastic ML's renormalisation, each detector's raw
score is instead ranked against the organisation's own distribution of it.

The unit is the *user-day*, since the budget is stated in alerts per 1,000 active
user-days: for each detector, a histogram of every member's highest score of each
active day (:class:`DailyMaxima`, pooled per team, so that the worker and ``replay``
build it from the same events in the same order). The threshold is where the
histogram's upper tail, extended as an exponential (peaks over a threshold,
generalised Pareto with shape 0), falls to the budget. The tail's decay rate is
shrunk towards the one the scores promise (a score of 0.1 more is ten times rarer),
so a few days of evidence cannot move a threshold far, and a quiet organisation keeps
the configured threshold: renormalisation only ever raises it.

The sketch cannot tell an ordinary day from an incident's: both are a member's day.
A team's real incidents (a spike or two in a few hundred user-days, far more often
than any budget) sit at the very top of its tail. Were the decay read from the tail's
mean, they would flatten it and lift the threshold above themselves: the detector
would budget away the very incidents it is for. So the decay is read from the tail's
median excess, which a few days far out barely move. And however noisy a team's days,
evidence of ``ceiling`` or more (0.9: one in a billion) still alerts: the budget bounds
what ordinary days would raise; it never switches a detector off.

References
----------
Elastic, "Anomaly score explanation": raw scores are ranked against the quantiles of
all raw scores seen (renormalisation).
Coles, S. (2001). An Introduction to Statistical Modeling of Extreme Values, ch. 4.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from tokenradar.detectors.records import Record

BIN_WIDTH = 0.02
"""Scores are kept to 0.02 (a fifth of a decade of surprise): fine enough for a threshold."""
BINS = int(round(1.0 / BIN_WIDTH)) + 1
PROMISED_DECAY = 10.0 * math.log(10.0)
"""Decay of the tail the scores promise: P(score >= s) = 10**(-10 s), per unit of score."""
PRIOR_TAIL_DAYS = 5.0
"""How many user-days of tail the promised decay weighs against the organisation's own."""


def score_bin(score: float) -> int:
    """The histogram bin of a score in [0, 1].

    >>> score_bin(0.0), score_bin(0.6), score_bin(1.0)
    (0, 30, 50)
    """
    return min(BINS - 1, max(0, int(score / BIN_WIDTH + 1e-9)))


class DailyMaxima(Record):
    """Per detector, how many user-days had each highest score: a mergeable sketch.

    Examples
    --------
    A team whose ordinary days often reach 0.6 on a detector gets a higher threshold;
    one whose days stay low keeps the configured one.

    >>> import random
    >>> rng = random.Random(1)
    >>> noisy, quiet = DailyMaxima(), DailyMaxima()
    >>> for _ in range(400):
    ...     noisy.add("spike", min(1.0, rng.expovariate(10.0)))
    ...     quiet.add("spike", min(1.0, rng.expovariate(30.0)))
    >>> round(noisy.threshold("spike", 0.6, 0.05, min_days=100, tail_days=20), 2)
    0.78
    >>> quiet.threshold("spike", 0.6, 0.05, min_days=100, tail_days=20)
    0.6
    """

    counts: dict[str, dict[int, int]] = {}
    """Detector -> score bin (``score_bin``) -> its user-days; only bins with days."""

    def add(self, detector: str, score: float) -> None:
        """Count one user-day whose highest ``detector`` score was ``score``."""
        self.add_count(detector, score_bin(score), 1)

    def merge(self, other: DailyMaxima) -> None:
        """Add another sketch's user-days (another team's, another partition's)."""
        for detector, bins in other.counts.items():
            for index, count in bins.items():
                self.add_count(detector, index, count)

    def add_count(self, detector: str, index: int, count: int) -> None:
        bins = self.counts.setdefault(detector, {})
        bins[index] = bins.get(index, 0) + count

    def days(self, detector: str) -> int:
        return sum(self.counts.get(detector, {}).values())

    def threshold(self, detector: str, configured: float, budget_per_1000: float, *,
                  min_days: int, tail_days: int, ceiling: float = 1.0) -> float:
        """The score at which ``detector`` alerts on about ``budget_per_1000`` user-days in
        1,000 of this sketch's; never below ``configured``, never above ``ceiling`` (unless
        ``configured`` is)."""
        bins = self.counts.get(detector)
        total = sum(bins.values()) if bins is not None else 0
        if bins is None or total < min_days:
            return configured
        # The tail starts at the highest bin with at least ``tail_days`` days at or above.
        above, start = 0, BINS
        while start > 0 and above < tail_days:
            start -= 1
            above += bins.get(start, 0)
        if start == 0 or above == 0:
            return configured  # most days score nothing high: nothing to extrapolate from
        edge = start * BIN_WIDTH
        # An exponential's median excess is ln 2 over its decay: the excess of all the
        # tail's days as the median says, not as its few farthest days would.
        excess = above * _median_excess(bins, start, above) / math.log(2.0)
        decay = (above + PRIOR_TAIL_DAYS) / (excess + PRIOR_TAIL_DAYS / PROMISED_DECAY)
        rate = budget_per_1000 / 1000.0
        level = edge + math.log(max(1.0, (above / total) / rate)) / decay
        return max(configured, min(ceiling, 1.0, level))


def _median_excess(bins: dict[int, int], start: int, above: int) -> float:
    """How far above the tail's edge (bin ``start``) its median day lies, to the bin."""
    seen = 0
    for index in range(start, BINS):
        seen += bins.get(index, 0)
        if 2 * seen >= above:
            return (index - start + 0.5) * BIN_WIDTH
    return (BINS - start) * BIN_WIDTH


@dataclass(frozen=True, slots=True)
class Standing:
    """Where one detector's threshold stands across teams, and over the whole organisation
    (every team's days merged), for a person to read."""

    detector: str
    user_days: int
    teams: int
    """Teams with enough user-days for their own days to count."""
    raised: int
    """Of those, the teams whose threshold their days raised."""
    median: float
    highest: float
    organisation: float

    def describe(self, configured: float) -> str:
        """One line: how far the team's own days moved the threshold, and for how many.

        >>> Standing("spike", 4000, 20, 5, 0.6, 0.81, 0.66).describe(0.6)
        ... # doctest: +NORMALIZE_WHITESPACE
        'spike: 5 of 20 teams raised above 0.60 (median 0.60, highest 0.81); all teams
        pooled: 0.66, over 4,000 user-days'
        """
        return (f"{self.detector}: {self.raised} of {self.teams} teams raised above "
                f"{configured:.2f} (median {self.median:.2f}, highest {self.highest:.2f}); "
                f"all teams pooled: {self.organisation:.2f}, over {self.user_days:,} user-days")


def standings(sketches: Iterable[DailyMaxima], configured: float, budget_per_1000: float, *,
              min_days: int, tail_days: int, ceiling: float = 1.0) -> list[Standing]:
    """Each detector's :class:`Standing` over the teams' sketches."""
    teams = list(sketches)
    pooled = DailyMaxima()
    for sketch in teams:
        pooled.merge(sketch)
    result = []
    for detector in sorted(pooled.counts):
        def threshold(sketch: DailyMaxima, name: str = detector) -> float:
            return sketch.threshold(name, configured, budget_per_1000, min_days=min_days,
                                    tail_days=tail_days, ceiling=ceiling)
        known = [threshold(sketch) for sketch in teams if sketch.days(detector) >= min_days]
        result.append(Standing(
            detector, pooled.days(detector), len(known),
            sum(level > configured for level in known),
            statistics.median(known) if known else configured,
            max(known, default=configured), threshold(pooled)))
    return result
