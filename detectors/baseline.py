"""An exponentially weighted mean and variance: a user's baseline in three numbers.

River's ``stats.EWMean``/``EWVar`` are compiled objects whose state is reachable only
through pickle; a baseline must round-trip through our own codec exactly, so this
keeps the same recurrence (West's weighted Welford) as plain floats.
"""

from __future__ import annotations

import math


class EWStats:
    """Fading mean and variance of a stream, with the count of values seen.

    Parameters
    ----------
    fading_factor
        Weight of each new value; 0.05 remembers roughly the last 20-40 values.

    Examples
    --------
    >>> stats = EWStats(fading_factor=0.5)
    >>> for x in (1.0, 2.0, 3.0):
    ...     stats.update(x)
    >>> stats.count, round(stats.mean, 3), round(stats.std, 3)
    (3, 2.25, 0.829)
    """

    __slots__ = ("count", "fading_factor", "mean", "var")

    def __init__(self, fading_factor: float, count: int = 0, mean: float = 0.0,
                 var: float = 0.0) -> None:
        self.fading_factor = fading_factor
        self.count = count
        self.mean = mean
        self.var = var

    def update(self, x: float) -> None:
        self.count += 1
        if self.count == 1:
            self.mean, self.var = x, 0.0
            return
        # The first values weigh as in a plain mean, so a young baseline is not
        # dominated by its very first observation.
        alpha = max(self.fading_factor, 1.0 / self.count)
        diff = x - self.mean
        increment = alpha * diff
        self.mean += increment
        self.var = (1.0 - alpha) * (self.var + diff * increment)

    def update_clipped(self, x: float, min_std: float) -> None:
        """Learn ``x`` clipped to mean + 3 sd, so one outlier cannot poison the baseline."""
        if self.count >= 2:
            x = min(x, self.mean + 3.0 * max(self.std, min_std))
        self.update(x)

    @property
    def std(self) -> float:
        return math.sqrt(self.var)

    def z(self, x: float, min_std: float) -> float:
        """How many standard deviations ``x`` lies above the mean (std floored)."""
        return (x - self.mean) / max(self.std, min_std)

    def to_list(self) -> list[float]:
        return [self.count, self.mean, self.var]

    @classmethod
    def from_list(cls, fading_factor: float, values: list[float]) -> EWStats:
        count, mean, var = values
        return cls(fading_factor, int(count), mean, var)
