"""Calibration: every detector's score means the same thing.

A score is the surprise of an observation under the user's own distribution:
``-log10(upper tail probability) / 10``, capped at 1. So 0.3 is a 1-in-1,000
observation, 0.6 one in a million, 1.0 one in ten billion, whatever the detector.
"""

from __future__ import annotations

import math

SCORE_DECADES = 10.0
"""Tail probability 10**-SCORE_DECADES maps to score 1."""


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
    p_upper = 0.5 * math.erfc(z / math.sqrt(2.0))
    if p_upper <= 0.0:
        return 1.0
    return min(1.0, max(0.0, -math.log10(p_upper) / SCORE_DECADES))
