"""Calibration: every detector's score means the same thing.

A score is the surprise of an observation under the user's own distribution:
``-log10(upper tail probability) / 10``, capped at 1. So 0.3 is a 1-in-1,000
observation, 0.6 one in a million, 1.0 one in ten billion, whatever the detector.
"""

from __future__ import annotations

import math

SCORE_DECADES = 10.0
"""Tail probability 10**-SCORE_DECADES maps to score 1."""
REQUEST_OVERDISPERSION = 4.0
"""People send requests in sessions of several, so their counts come in clumps: a count
is judged against a pace this many times the usual one (a simple, deliberately wary
stand-in for a clumped distribution, which backtests showed to be too ready to alert)."""


def tail_score(z: float) -> float:
    """Score of a standard-normal deviate ``z``: the upper tail's surprise, in [0, 1].

    >>> tail_score(0.0)
    0.0301...
    >>> round(tail_score(4.753), 2)
    0.6
    >>> tail_score(40.0)
    1.0
    """
    if z <= -8.0:
        return 0.0
    return decades_score(normal_tail_decades(z))


def decades_score(decades: float) -> float:
    """Score of a surprise given in decades, ``-log10(probability)``.

    >>> decades_score(6.0), decades_score(25.0), decades_score(-1.0)
    (0.6, 1.0, 0.0)
    """
    return min(1.0, max(0.0, decades / SCORE_DECADES))


def normal_tail_decades(z: float) -> float:
    """``-log10`` of the standard normal's upper tail beyond ``z``."""
    p_upper = 0.5 * math.erfc(z / math.sqrt(2.0))
    if p_upper <= 1e-300:
        return 300.0
    return -math.log10(p_upper)


def poisson_tail_decades(count: int, mean: float) -> float:
    """``-log10 P(N >= count)`` for N ~ Poisson(mean): how surprising so many events are.

    >>> round(poisson_tail_decades(10, 2.0), 2)
    4.33
    >>> poisson_tail_decades(0, 2.0)
    0.0
    """
    if count <= 0:
        return 0.0
    mean = max(mean, 1e-9)
    # Sum the tail from ``count`` upwards in log space; terms shrink fast past the mean.
    log_term = count * math.log(mean) - mean - math.lgamma(count + 1)
    total, term, k = 0.0, 1.0, count
    while term > 1e-12 and k < count + 1000:
        total += term
        k += 1
        term *= mean / k
    log_tail = log_term + math.log(total)
    return max(0.0, -log_tail / math.log(10.0))


def combined_decades(*decades: float) -> float:
    """Fisher's method: the surprise of several independent tail probabilities together.

    >>> round(combined_decades(3.0, 3.0), 2)  # two 1-in-1,000s: ~1 in 67,000, not 1 in 10**6
    4.83
    """
    statistic = 2.0 * math.log(10.0) * sum(decades)  # -2 * sum(ln p)
    half = statistic / 2.0
    # Upper tail of chi-square with 2k degrees of freedom, in closed form.
    term, total = 1.0, 1.0
    for i in range(1, len(decades)):
        term *= half / i
        total += term
    return max(0.0, (half - math.log(total)) / math.log(10.0))


def binomial_tail_decades(successes: int, trials: int, probability: float) -> float:
    """``-log10 P(X >= successes)`` for X ~ Binomial(trials, probability).

    >>> round(binomial_tail_decades(8, 10, 0.2), 2)
    4.11
    """
    if successes <= 0:
        return 0.0
    tail = sum(math.comb(trials, k) * probability**k * (1.0 - probability) ** (trials - k)
               for k in range(successes, trials + 1))
    return 300.0 if tail <= 1e-300 else -math.log10(tail)
