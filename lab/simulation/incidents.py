"""Injected incidents: each changes one person's usage for a while and carries a label.

Two sorts. ``Gaming`` and ``Creep`` change how the person works (a :class:`UsageChange`);
the others add traffic of their own next to the person's normal work. Shapes and
magnitudes are drawn per incident within the spec's ranges (:class:`IncidentRanges`:
the default organisation's, or a randomised one's, far wider), so no detector can
overfit one parameter; the drawn values are kept in the label's ``params``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from tokenradar.lab.simulation.people import MAX_CONTEXT, Person, UsageChange
from tokenradar.lab.simulation.spec import Label, SimulationSpec
from tokenradar.lab.simulation.usage import (
    DAY,
    HOUR,
    UNUSUAL_CLIENTS,
    UNUSUAL_MODELS,
    RequestLog,
    iso,
)

Events = list[tuple[int, dict[str, object]]]
BUSIEST_LEFT = 10
"""Once no one left has a level, level changes go to one of this many busiest people."""


class Gaming(UsageChange):
    """Tokenmaxxing: prompts padded with filler from a small pool, and more of them.

    The filler brings a request's input to about ``input_factor`` times the person's
    usual input; the answers (output) stay as they were.
    """

    def __init__(self, start: float, end: float, filler: float, request_factor: float,
                 pool: list[str], pooled_share: float) -> None:
        self.start, self.end = start, end
        self._filler, self._requests = filler, request_factor
        self.pool, self.pooled_share = pool, pooled_share

    def request_factor(self, at: float) -> float:
        return self._requests if self.start <= at < self.end else 1.0

    def input_padding(self, at: float, rng: random.Random) -> float:
        if self.start <= at < self.end:
            return self._filler * rng.lognormvariate(0, 0.2)
        return 0.0

    def fingerprint(self, at: float, rng: random.Random) -> str | None:
        if self.start <= at < self.end and rng.random() < self.pooled_share:
            return rng.choice(self.pool)
        return None


class Creep(UsageChange):
    """A level rising a few percent each working day, compounding, until the run ends."""

    def __init__(self, person: Person, start_day: int, daily: float, request_share: float
                 ) -> None:
        self.person, self.start_day = person, start_day
        self.daily, self.request_share = daily, request_share

    def _factor(self, at: float) -> float:
        day = self.person.local_day(at)
        if day < self.start_day:
            return 1.0
        working = sum(1 for d in range(self.start_day, day + 1) if self.person.weekday(d) < 5)
        return (1.0 + self.daily) ** working

    def request_factor(self, at: float) -> float:
        return float(self._factor(at) ** self.request_share)

    def input_factor(self, at: float) -> float:
        return float(self._factor(at) ** (1.0 - self.request_share))

    output_factor = input_factor


class InjectedTraffic:
    """Requests of an incident, made next to the person's own; all made on one day."""

    def __init__(self, spec: SimulationSpec, person: Person, incident_id: str, start: float,
                 make: Callable[[random.Random, RequestLog], Events]) -> None:
        self.unit = math.floor((start - spec.origin) / DAY)
        self._rng = random.Random(f"{spec.seed}/{incident_id}")
        self._log = RequestLog(spec.seed, incident_id, person.user_id, person.team)
        self._make = make
        # Made with the person's own producer: it omits what theirs omits.
        self._omitted = [key for key, omitted in (("session_id", person.omits_session),
                                                  ("prompt_fingerprint",
                                                   person.omits_fingerprint)) if omitted]

    def events_for_day(self, day: int) -> Events:
        if day != self.unit:
            return []
        events = self._make(self._rng, self._log)
        for key in self._omitted:
            for _, event in events:
                event.pop(key, None)
        return events


Plan = tuple[Label, InjectedTraffic | None]


def plan_incidents(spec: SimulationSpec, rng: random.Random, candidates: list[Person]
                   ) -> tuple[list[Label], list[InjectedTraffic]]:
    """Draw ``spec.incidents_per_kind`` incidents of each kind, one person each."""
    free = list(candidates)
    budget = min(spec.incidents_per_kind * len(spec.incident_kinds), len(free) // 2)
    order = [kind for _ in range(spec.incidents_per_kind) for kind in spec.incident_kinds]
    labels: list[Label] = []
    traffic: list[InjectedTraffic] = []
    for kind in order[:budget]:
        drawn = _draw(spec, rng, kind, free, f"incident-{len(labels) + 1:03d}")
        if drawn is None:
            continue  # no one left on whom this kind fits in this run
        person, (label, extra) = drawn
        free.remove(person)
        labels.append(label)
        if extra is not None:
            traffic.append(extra)
    return labels, traffic


def _draw(spec: SimulationSpec, rng: random.Random, kind: str, free: list[Person],
          number: str) -> tuple[Person, Plan] | None:
    # A level change is only visible on someone with a level: a few sessions a day; once
    # no one left has that, the busiest of those left (not anyone: a light user may make
    # no request at all in a day-long incident).
    eligible = free
    if kind in ("spike", "gaming", "creep"):
        eligible = [p for p in free if p.sessions_per_day() >= 2] or sorted(
            free, key=Person.sessions_per_day, reverse=True)[:BUSIEST_LEFT]
    for _ in range(20 if eligible else 0):  # a draw may not fit (too late, too short)
        person = rng.choice(eligible)
        plan = PLANNERS[kind](spec, rng, person, number)
        if plan is not None:
            return person, plan
    return None


def _label(number: str, kind: str, person: Person, start: float, end: float,
           **params: float | str) -> Label:
    rounded = {k: round(v, 4) if isinstance(v, float) else v for k, v in params.items()}
    return Label(number, kind, person.user_id, person.team, iso(start), iso(end),
                 params=tuple(sorted(rounded.items())))


def _workdays(spec: SimulationSpec, person: Person, last: int | None = None) -> list[int]:
    """Working days after the warm-up (in UTC too: a local day may start the evening before)."""
    last = spec.days - 1 if last is None else last
    warm = spec.origin + spec.warmup_days * DAY
    return [d for d in range(spec.warmup_days, last + 1)
            if person.weekday(d) < 5 and person.local_midnight(d) >= warm]


def _during_work(spec: SimulationSpec, rng: random.Random, person: Person,
                 room_hours: float) -> float | None:
    """A moment on one of the person's working days, half an hour after they start and
    leaving ``room_hours`` before they stop; None if they have no working day left."""
    days = _workdays(spec, person)
    if not days:
        return None
    window_start, window_end = person.work_window(rng.choice(days))
    hours = (window_end - window_start) / HOUR
    return window_start + rng.uniform(0.5, max(0.6, hours - room_hours)) * HOUR


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def plan_gaming(spec: SimulationSpec, rng: random.Random, person: Person, number: str
                ) -> Plan | None:
    ranges = spec.ranges
    length = rng.randint(*ranges.gaming_days)
    days = _workdays(spec, person)
    if len(days) < length:
        return None
    first = rng.randrange(len(days) - length + 1)
    start = person.work_window(days[first])[0] - 0.5 * HOUR
    end = min(spec.end, person.work_window(days[first + length - 1])[1] + HOUR)
    factor = rng.uniform(*ranges.gaming_input_factor)
    more = rng.uniform(*ranges.gaming_request_factor)
    pool = [f"{rng.getrandbits(64):016x}" for _ in range(rng.randint(2, 6))]
    share = rng.uniform(*ranges.gaming_pooled_share)
    filler = (factor - 1) * person.mean_input()
    person.changes.append(Gaming(start, end, filler, more, pool, share))
    person.working_days.update(days[first:first + length])
    return _label(number, "gaming", person, start, end, input_factor=factor,
                  request_factor=more, prompt_pool=len(pool), pooled_share=share), None


def plan_creep(spec: SimulationSpec, rng: random.Random, person: Person, number: str
               ) -> Plan | None:
    days = [d for d in _workdays(spec, person, min(14, spec.days - 3)) if d >= 8]
    if not days:
        return None
    day = rng.choice(days)
    daily = rng.uniform(*spec.ranges.creep_daily)
    shape = rng.choice(("tokens", "requests", "both"))
    share = {"tokens": 0.0, "requests": 1.0}.get(shape, rng.uniform(0.3, 0.7))
    person.changes.append(Creep(person, day, daily, share))
    doubled: dict[str, str] = {}
    if spec.knobs is not None:  # when the level has doubled: "found before it doubles"
        doubled["doubles_at"] = iso(person.local_midnight(_doubling_day(person, day, daily)))
    return _label(number, "creep", person, person.local_midnight(day), spec.end,
                  daily_growth=daily, shape=shape, **doubled), None


def _doubling_day(person: Person, start_day: int, daily: float) -> int:
    """The local day on which a creep from ``start_day`` has doubled the level."""
    needed = math.ceil(math.log(2) / math.log(1 + daily))
    day = start_day
    while True:
        needed -= person.weekday(day) < 5
        if needed <= 0:
            return day
        day += 1


def plan_spike(spec: SimulationSpec, rng: random.Random, person: Person, number: str
               ) -> Plan | None:
    start = _during_work(spec, rng, person, room_hours=1.5)
    if start is None or start + HOUR > spec.end:
        return None
    # Far above the person's norm: their own busiest hour of a day passes 4x their mean
    # active hour on 6% of days, 8x on 0.3% and 10x on 0.05% (seed 7).
    factor = _log_uniform(rng, *spec.ranges.spike_factor)
    shape = rng.choice(spec.ranges.spike_shapes)
    if shape == "joint":
        return _joint_spike(spec, rng, person, number, start, factor)
    # "size": a few huge requests. "requests": (factor - 1) active hours' worth of
    # requests of about the usual size; "both": halfway between, on a log scale.
    more = {"requests": factor - 1, "size": 1.0}.get(shape, math.sqrt(factor - 1))
    per_hour = person.requests_per_hour if shape == "size" else person.active_hour_requests()
    count = max(2, round(per_hour * more))
    model, client = person.model_at(start), person.clients[0]

    def make(rng: random.Random, log: RequestLog) -> Events:
        # Against the person's hourly norm as it is by then: the hours drawn so far.
        size = (factor - 1) * person.active_hour_tokens() / count
        events: Events = []
        times = sorted(rng.uniform(start, start + HOUR) for _ in range(count))
        session = log.new_session()
        for index, at in enumerate(times):
            if index and rng.random() < 0.15:
                session = log.new_session()
            tokens = size * rng.lognormvariate(0, 0.3)
            share = rng.uniform(0.75, 0.92)
            events.append(log.request(at, model, int(tokens * share), int(tokens * (1 - share)),
                                      0, client, session, f"{rng.getrandbits(64):016x}"))
        return events

    label = _label(number, "spike", person, start, start + HOUR, factor=factor, shape=shape,
                   requests=count)
    return label, InjectedTraffic(spec, person, number, start, make)


def _joint_spike(spec: SimulationSpec, rng: random.Random, person: Person, number: str,
                 start: float, factor: float) -> Plan:
    """An hour of 2-4x the person's pace with requests several times their usual size,
    most repeating one prompt: each signal alone ordinary, together ``factor`` x."""
    pace = rng.uniform(2, 4)
    count = max(3, round(pace * person.active_hour_requests()))
    repeated, fingerprint = rng.uniform(0.5, 0.9), f"{rng.getrandbits(64):016x}"
    model, client = person.model_at(start), person.clients[0]

    def make(rng: random.Random, log: RequestLog) -> Events:
        size = (factor - 1) * person.active_hour_tokens() / count
        events: Events = []
        session = log.new_session()
        for at in sorted(rng.uniform(start, start + HOUR) for _ in range(count)):
            tokens = size * rng.lognormvariate(0, 0.3)
            share = rng.uniform(0.75, 0.92)
            prompt = fingerprint if rng.random() < repeated else f"{rng.getrandbits(64):016x}"
            events.append(log.request(at, model, int(tokens * share), int(tokens * (1 - share)),
                                      0, client, session, prompt))
        return events

    label = _label(number, "spike", person, start, start + HOUR, factor=factor, shape="joint",
                   requests=count, pace=pace, repeated_share=repeated)
    return label, InjectedTraffic(spec, person, number, start, make)


def plan_scripted_loop(spec: SimulationSpec, rng: random.Random, person: Person, number: str
                       ) -> Plan | None:
    start = _during_work(spec, rng, person, room_hours=1.0)
    if start is None:
        return None
    ranges = spec.ranges
    end = min(spec.end, start + rng.uniform(*ranges.loop_hours) * HOUR)
    if end - start < HOUR:
        return None
    period = _log_uniform(rng, *ranges.loop_period_s)
    jitter = rng.uniform(*ranges.loop_jitter)
    prompts = [(f"{rng.getrandbits(64):016x}", rng.lognormvariate(person.log_input, 0.4),
                rng.lognormvariate(person.log_output, 0.3)) for _ in range(rng.randint(1, 3))]
    client, model = rng.choice(("cli", "agent")), person.model_at(start)

    def make(rng: random.Random, log: RequestLog) -> Events:
        events: Events = []
        session = log.new_session()
        at, index = start, 0
        while at < end:
            fingerprint, input_tokens, output_tokens = prompts[index % len(prompts)]
            events.append(log.request(at, model, int(input_tokens * rng.uniform(0.99, 1.01)),
                                      int(output_tokens * rng.uniform(0.98, 1.02)), 0, client,
                                      session, fingerprint))
            at += period * (1 + rng.uniform(-jitter, jitter))
            index += 1
        return events

    label = _label(number, "scripted_loop", person, start, end, period_s=period, jitter=jitter,
                   prompts=len(prompts), client=client)
    return label, InjectedTraffic(spec, person, number, start, make)


def plan_runaway_agent(spec: SimulationSpec, rng: random.Random, person: Person, number: str
                       ) -> Plan | None:
    days = _workdays(spec, person)
    if not days:
        return None
    evening = max(18.0, person.start_hour + person.work_hours) + rng.uniform(0.5, 3)
    start = person.local_midnight(rng.choice(days)) + evening * HOUR
    ranges = spec.ranges
    end = min(spec.end, start + rng.uniform(*ranges.runaway_hours) * HOUR)
    if end - start < 2 * HOUR:
        return None
    gap, growth = _log_uniform(rng, *ranges.runaway_gap_s), rng.uniform(*ranges.runaway_growth)
    restart = rng.randint(20, 100)
    model = person.model_at(start)

    def make(rng: random.Random, log: RequestLog) -> Events:
        events: Events = []
        at = start
        while at < end:
            session = log.new_session()
            context, previous = rng.uniform(3000, 15000), 0.0
            for _ in range(max(5, round(restart * rng.uniform(0.6, 1.4)))):
                if at >= end or context > MAX_CONTEXT:
                    break
                events.append(log.request(
                    at, model, int(context), int(rng.lognormvariate(math.log(400), 0.6)),
                    int(previous * rng.uniform(0.85, 0.97)), "agent", session,
                    f"{rng.getrandbits(64):016x}"))
                previous = context
                context *= 1 + growth * rng.uniform(0.5, 1.5)
                at += min(4 * gap, max(2.0, rng.lognormvariate(math.log(gap), 0.5)))
            at += rng.uniform(2, 30)  # the agent restarts itself
        return events

    label = _label(number, "runaway_agent", person, start, end, gap_s=gap,
                   context_growth=growth, session_requests=restart)
    return label, InjectedTraffic(spec, person, number, start, make)


def plan_new_pattern(spec: SimulationSpec, rng: random.Random, person: Person, number: str
                     ) -> Plan | None:
    days = list(range(spec.warmup_days, spec.days))
    if not days:
        return None
    # the middle of the person's own night
    night = (2 * person.start_hour + person.work_hours + 24) / 2 + rng.uniform(-1.5, 1.5)
    start = person.local_midnight(rng.choice(days)) + night * HOUR
    minutes = rng.uniform(*spec.ranges.misuse_minutes)
    end = start + minutes * 60
    if start < spec.origin + spec.warmup_days * DAY or end > spec.end:
        return None
    count = rng.randint(*spec.ranges.misuse_requests)
    model, client = rng.choice(UNUSUAL_MODELS), rng.choice(UNUSUAL_CLIENTS)
    log_input = math.log(rng.uniform(800, 12000))
    log_output = math.log(rng.uniform(200, 2000))

    def make(rng: random.Random, log: RequestLog) -> Events:
        pool = [f"{rng.getrandbits(64):016x}" for _ in range(max(3, count // 3))]
        times = [start] + sorted(rng.uniform(start, end) for _ in range(count - 1))
        return [log.request(at, model, int(rng.lognormvariate(log_input, 0.5)),
                            int(rng.lognormvariate(log_output, 0.5)), 0, client, None,
                            rng.choice(pool)) for at in times]

    label = _label(number, "new_pattern", person, start, end, model=model, client=client,
                   requests=count)
    return label, InjectedTraffic(spec, person, number, start, make)


PLANNERS: dict[str, Callable[[SimulationSpec, random.Random, Person, str], Plan | None]] = {
    "gaming": plan_gaming,
    "scripted_loop": plan_scripted_loop,
    "runaway_agent": plan_runaway_agent,
    "new_pattern": plan_new_pattern,
    "creep": plan_creep,
    "spike": plan_spike,
}
