"""Service accounts: machine traffic that is expected.

``svc-nightly-eval`` runs the same evaluation set every night at 01:00 UTC, one prompt
every 20 s; ``svc-ci-review`` reviews pull requests as they come, mostly in working hours;
both are allowlisted in the example config. A randomised organisation has
:class:`MachineAccount` identities instead, under any name, that no allowlist names.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

from tokenradar.lab.simulation.usage import DAY, EVERYDAY_MODELS, HOUR, RequestLog

if TYPE_CHECKING:
    from tokenradar.lab.simulation.spec import SimulationSpec

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


class MachineAccount:
    """A machine identity of a randomised organisation, at machine rhythm around the clock.

    ``poller``: the same few prompts every 20 s to 10 min, day and night. ``batch``: a
    fixed set of prompts once a day at its own hour. ``hourly``: a short batch at the
    same minute of every hour. ``ci``: bursts of a few requests as work comes in, more
    in the day than at night, weekends too.
    """

    RHYTHMS = ("poller", "batch", "hourly", "ci")

    def __init__(self, spec: SimulationSpec, user_id: str, team: str, rhythm: str,
                 number: int) -> None:
        self.user_id, self.team, self.rhythm = user_id, team, rhythm
        self.origin, self.run_end = spec.origin, spec.end
        rng = self._rng = random.Random(f"{spec.seed}/machine/{number}")
        self._log = RequestLog(spec.seed, f"machine-{number}", user_id, team)
        self.model = rng.choice(EVERYDAY_MODELS)
        self.client = rng.choice(("sdk", "api", "agent", "cli"))
        self.with_session = rng.random() < 0.7
        self.with_fingerprint = rng.random() < 0.8
        count = {"poller": rng.randint(1, 5), "batch": rng.randint(50, 1500),
                 "hourly": rng.randint(5, 60), "ci": 0}[rhythm]
        self._prompts = [(f"{rng.getrandbits(64):016x}",
                          rng.lognormvariate(math.log(rng.uniform(500, 20000)), 0.3),
                          rng.lognormvariate(math.log(rng.uniform(50, 2000)), 0.3))
                         for _ in range(count)]
        self.period = math.exp(rng.uniform(math.log(20), math.log(600)))
        self.spacing = rng.uniform(1, 30)
        self.hour = rng.uniform(0, 24)
        self.rates = (rng.uniform(2, 20), rng.uniform(0.2, 3))
        self.ci_input = math.log(rng.uniform(2000, 30000))

    def events_for_day(self, day: int) -> list[tuple[int, dict[str, object]]]:
        midnight = self.origin + day * DAY
        if self.rhythm == "poller":
            return self._run(midnight + self.period * self._rng.random(), midnight + DAY,
                             self.period, cycle=True)
        if self.rhythm == "batch":
            start = midnight + self.hour * HOUR + self._rng.uniform(0, 120)
            return self._run(start, float("inf"), self.spacing)
        if self.rhythm == "hourly":
            return [event for hour in range(24)
                    for event in self._run(midnight + hour * HOUR + self.hour * 60
                                           + self._rng.uniform(0, 20), float("inf"),
                                           self.spacing)]
        return self._ci(midnight)

    def _run(self, at: float, until: float, spacing: float, cycle: bool = False
             ) -> list[tuple[int, dict[str, object]]]:
        """The prompts one after the other (``cycle``: again and again until ``until``)."""
        rng, events = self._rng, list[tuple[int, dict[str, object]]]()
        session = self._log.new_session()
        index = 0
        while at < until and (cycle or index < len(self._prompts)):
            fingerprint, input_tokens, output_tokens = self._prompts[index % len(self._prompts)]
            self._request(events, at, int(input_tokens * rng.uniform(0.98, 1.02)),
                          int(output_tokens * rng.uniform(0.9, 1.1)), session, fingerprint)
            at += spacing * rng.uniform(0.99, 1.01)
            index += 1
        return events

    def _ci(self, midnight: float) -> list[tuple[int, dict[str, object]]]:
        rng, events = self._rng, list[tuple[int, dict[str, object]]]()
        for hour in range(24):
            at, end = midnight + hour * HOUR, midnight + (hour + 1) * HOUR
            rate = self.rates[0] if 7 <= hour < 19 else self.rates[1]
            while (at := at + rng.expovariate(rate) * HOUR) < end:
                session, request_at = self._log.new_session(), at
                for _ in range(rng.randint(2, 6)):
                    self._request(events, request_at,
                                  int(rng.lognormvariate(self.ci_input, 0.5)),
                                  int(rng.lognormvariate(math.log(600), 0.4)), session,
                                  f"{rng.getrandbits(64):016x}")
                    request_at += rng.uniform(2, 20)
        return events

    def _request(self, events: list[tuple[int, dict[str, object]]], at: float,
                 input_tokens: int, output_tokens: int, session: str, fingerprint: str
                 ) -> None:
        if self.origin <= at < self.run_end:
            events.append(self._log.request(
                at, self.model, input_tokens, output_tokens, 0, self.client,
                session if self.with_session else None,
                fingerprint if self.with_fingerprint else None))
