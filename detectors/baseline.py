"""An exponentially weighted mean and variance: a user's baseline in three numbers.

A stored record (count, mean, variance); the fading factor is the detector's
parameter, given at each update, so a baseline stores numbers only and a changed
fading factor applies to every user at once. The recurrence is West's weighted
Welford, as River's ``stats.EWMean``/``EWVar`` keep it, in plain floats.
"""

from __future__ import annotations

import math

from tokenradar.detectors.records import Record


class EWStats(Record):
    """Fading mean and variance of a stream, with the count of values seen.

    Each update takes the ``fading_factor``: the weight of each new value; 0.05
    remembers roughly the last 20-40 values.

    Examples
    --------
    >>> stats = EWStats()
    >>> for x in (1.0, 2.0, 3.0):
    ...     stats.update(x, fading_factor=0.5)
    >>> stats.count, round(stats.mean, 3), round(stats.std, 3)
    (3, 2.25, 0.829)
    """

    count: int = 0
    mean: float = 0.0
    var: float = 0.0

    def update(self, x: float, fading_factor: float) -> None:
        count = self.count = self.count + 1
        if count == 1:
            self.mean, self.var = float(x), 0.0  # a count (an int) is stored as a float
            return
        # The first values weigh as in a plain mean, so a young baseline is not
        # dominated by its very first observation. (max() by hand: ~9 updates an event.)
        plain = 1.0 / count
        alpha = plain if plain > fading_factor else fading_factor
        diff = x - self.mean
        increment = alpha * diff
        self.mean += increment
        self.var = (1.0 - alpha) * (self.var + diff * increment)

    def update_clipped(self, x: float, min_std: float, fading_factor: float) -> None:
        """Learn ``x`` clipped to mean + 3 sd, so one outlier cannot poison the baseline."""
        if self.count >= 2:
            x = min(x, self.mean + 3.0 * max(self.std, min_std))
        self.update(x, fading_factor)

    @property
    def std(self) -> float:
        return math.sqrt(self.var)

    def z(self, x: float, min_std: float) -> float:
        """How many standard deviations ``x`` lies above the mean (std floored)."""
        return (x - self.mean) / max(self.std, min_std)
