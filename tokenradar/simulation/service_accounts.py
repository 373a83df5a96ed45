"""Service accounts: machine traffic that is expected, and allowlisted in the config.

``svc-nightly-eval`` runs the same evaluation set every night at 01:00 UTC, one prompt
every 20 s; ``svc-ci-review`` reviews pull requests as they come, mostly in working hours.
"""

from __future__ import annotations

import math
import random

from tokenradar.simulation.usage import DAY, HOUR, RequestLog

SERVICE_TEAM = "automation"


class NightlyEval:
    """A batch job: a fixed set of prompts, machine-regular, every night."""

    user_id = "svc-nightly-eval"

    def __init__(self, seed: int, origin: float, run_end: float, prompts: int = 150) -> None:
        self.origin = origin
        self.run_end = run_end
        self._rng = random.Random(f"{seed}/{self.user_id}")
        self._log = RequestLog(seed, self.user_id, self.user_id, SERVICE_TEAM)
        self._prompts = [(f"{self._rng.getrandbits(64):016x}",
                          int(self._rng.lognormvariate(math.log(3000), 0.5)),
                          int(self._rng.lognormvariate(math.log(600), 0.4)))
                         for _ in range(prompts)]

    def events_for_day(self, day: int) -> list[tuple[int, dict[str, object]]]:
        rng = self._rng
        at = self.origin + day * DAY + HOUR + rng.uniform(0, 180)
        session = self._log.new_session()
        events = []
        for fingerprint, input_tokens, output_tokens in self._prompts:
            if self.origin <= at < self.run_end:
                events.append(self._log.request(
                    at, "claude-sonnet-4-5", input_tokens,
                    int(output_tokens * rng.uniform(0.95, 1.05)), 0, "agent", session,
                    fingerprint))
            at += 20.0 * rng.uniform(0.995, 1.005)
        return events


class CiReviewBot:
    """Reviews pull requests: a short burst of requests per PR, mostly in working hours."""

    user_id = "svc-ci-review"

    def __init__(self, seed: int, origin: float, run_end: float, origin_weekday: int) -> None:
        self.origin = origin
        self.run_end = run_end
        self.origin_weekday = origin_weekday
        self._rng = random.Random(f"{seed}/{self.user_id}")
        self._log = RequestLog(seed, self.user_id, self.user_id, SERVICE_TEAM)

    def events_for_day(self, day: int) -> list[tuple[int, dict[str, object]]]:
        rng = self._rng
        midnight = self.origin + day * DAY
        weekend = (self.origin_weekday + day) % 7 >= 5
        events: list[tuple[int, dict[str, object]]] = []
        for hour in range(24):
            per_hour = 0.5 if weekend or not 6 <= hour < 20 else 8.0
            at = midnight + hour * HOUR
            while True:
                at += rng.expovariate(per_hour) * HOUR
                if at >= midnight + (hour + 1) * HOUR:
                    break
                session = self._log.new_session()
                request_at = at
                for _ in range(rng.randint(2, 4)):
                    if self.origin <= request_at < self.run_end:
                        events.append(self._log.request(
                            request_at, "claude-sonnet-4-5",
                            int(rng.lognormvariate(math.log(9000), 0.6)),
                            int(rng.lognormvariate(math.log(700), 0.4)), 0, "agent", session,
                            f"{rng.getrandbits(64):016x}"))
                    request_at += rng.uniform(3, 15)
        return events
