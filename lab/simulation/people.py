"""People: their habits, and the requests they make on one day of their own calendar.

Each person works in their own time zone from their own start hour for their own number
of hours, with a lunch dip, in sessions of several requests; nights and weekends are
quiet. Levels differ by orders of magnitude between people (log-normal), legitimately.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import cast

from tokenradar.lab.simulation.usage import DAY, HOUR, RequestLog

MAX_CONTEXT = 190_000
"""Input tokens past which a session is restarted (a model's context window)."""
MIN_OBSERVED_HOURS = 20
"""Active hours drawn before a person's own record of them is their hourly norm."""


class UsageChange:
    """Something that changes how a person works for a while: an incident or a team shift.

    The factors multiply the person's habits at time ``at`` (epoch seconds); the default
    changes nothing, so a subclass overrides only what it changes.
    """

    def request_factor(self, at: float) -> float:
        return 1.0

    def input_factor(self, at: float) -> float:
        return 1.0

    def output_factor(self, at: float) -> float:
        return 1.0

    def input_padding(self, at: float, rng: random.Random) -> float:
        """Filler tokens added to the prompt."""
        return 0.0

    def fingerprint(self, at: float, rng: random.Random) -> str | None:
        """A prompt fingerprint to use instead of the person's own, or None."""
        return None


@dataclass
class Person:
    """One person's habits; ``events_for_day`` draws what they do on one local day."""

    user_id: str
    team: str
    utc_offset: float
    start_hour: float
    work_hours: float
    night_owl: bool
    weekend_worker: bool
    requests_per_hour: float
    session_length: float
    log_input: float
    log_output: float
    main_model: str
    other_models: tuple[str, ...]
    clients: tuple[str, ...]
    client_weights: tuple[float, ...]
    agent_share: float
    seed: int
    origin: float
    origin_weekday: int
    run_end: float
    joined_day: int | None = None
    first_event: float | None = None
    away: tuple[int, int] | None = None
    """Local days ``[first, back)`` on vacation."""
    adoption: tuple[float, str] | None = None
    """From this time on, this model is the main one."""
    changes: list[UsageChange] = field(default_factory=list)
    working_days: set[int] = field(default_factory=set)
    """Local days the person surely works (an incident's): no random day off on them, and
    at least one session in their working hours."""
    # Habits a randomised organisation draws (tokenradar.lab.simulation.knobs); the defaults
    # are the default organisation's, and leave its output byte for byte as it was.
    weekend_rate: float | None = None
    """Chance of working a weekend day; None: 0.3 for weekend workers, else 0.02."""
    agent_turns: tuple[int, int] = (8, 30)
    long_context_share: float = 0.0
    """Share of sessions carrying a growing conversation, most of it read from cache."""
    big_request_share: float = 0.0
    """Share of sessions opened by one very large request (a document, a codebase)."""
    reports_cache: bool = True
    omits_session: bool = False
    omits_fingerprint: bool = False
    prompt_repeat: float = 0.04
    on_call_nights: frozenset[int] = frozenset()
    """Local days whose night (after midnight) has an on-call session."""
    size_sample: tuple[tuple[float, float], ...] = ()
    """Relative (input, output) sizes of a public trace to draw requests from, at the
    person's own level; empty: log-normal sizes."""

    def __post_init__(self) -> None:
        self._rng = random.Random(f"{self.seed}/{self.user_id}")
        self._log = RequestLog(self.seed, self.user_id, self.user_id, self.team)
        self._recent: deque[str] = deque(maxlen=30)
        self._active_hours = 0
        self._active_hour_tokens = 0

    # -- calendar --------------------------------------------------------------------------
    def local_midnight(self, day: int) -> float:
        return self.origin + day * DAY - self.utc_offset * HOUR

    def weekday(self, day: int) -> int:
        return (self.origin_weekday + day) % 7

    def local_day(self, at: float) -> int:
        return math.floor((at + self.utc_offset * HOUR - self.origin) / DAY)

    def local_hour(self, at: float) -> float:
        return ((at + self.utc_offset * HOUR - self.origin) % DAY) / HOUR

    def work_window(self, day: int) -> tuple[float, float]:
        """The nominal working hours of a local day, epoch seconds."""
        start = self.local_midnight(day) + self.start_hour * HOUR
        return start, start + self.work_hours * HOUR

    def present(self, day: int) -> bool:
        if self.joined_day is not None and day < self.joined_day:
            return False
        return self.away is None or not self.away[0] <= day < self.away[1]

    # -- levels ----------------------------------------------------------------------------
    def mean_input(self) -> float:
        # log-normal mean, and context growing ~15% on average over a session
        return math.exp(self.log_input + 0.18) * 1.15

    def mean_output(self) -> float:
        return math.exp(self.log_output + 0.18)

    def sessions_per_day(self) -> float:
        return self.requests_per_hour * self.work_hours / self.session_length

    def active_hour_tokens(self) -> float:
        """Tokens in an hour with some use: the mean of the clock hours drawn so far, or
        before there are enough of them, an estimate from the habits.

        A light user's active hour holds about one session, more than their average hour.
        """
        if self._active_hours >= MIN_OBSERVED_HOURS:
            return self._active_hour_tokens / self._active_hours
        return self.active_hour_requests() * (self.mean_input() + self.mean_output())

    def active_hour_requests(self) -> float:
        """Requests in an hour with some use, from the habits: at least one session."""
        return max(self.requests_per_hour, self.session_length)

    def model_at(self, at: float) -> str:
        if self.adoption is not None and at >= self.adoption[0]:
            return self.adoption[1]
        return self.main_model

    # -- traffic ---------------------------------------------------------------------------
    def events_for_day(self, day: int) -> list[tuple[int, dict[str, object]]]:
        """The requests of local day ``day`` (0 = the run's first date), time-unordered."""
        if not self.present(day):
            return []
        rng = self._rng
        midnight = self.local_midnight(day)
        weekend = self.weekday(day) >= 5
        if weekend:
            rate = self.weekend_rate
            if rate is None:
                rate = 0.3 if self.weekend_worker else 0.02
            if rng.random() >= rate:
                return []
            window_start = midnight + rng.uniform(10, 17) * HOUR
            window_end = window_start + rng.uniform(0.5, 2.5) * HOUR
            intensity = rng.uniform(0.3, 0.8)
        else:
            if rng.random() < 0.03 and day != self.joined_day and day not in self.working_days:
                return []  # a day off, ill, in meetings all day
            window_start = midnight + (self.start_hour + rng.gauss(0, 0.25)) * HOUR
            window_end = midnight + (self.start_hour + self.work_hours + rng.gauss(0, 0.4)) * HOUR
            intensity = rng.lognormvariate(0, 0.3)  # busy days and quiet days
        forced = None
        if day == self.joined_day and self.first_event is not None:
            window_start = forced = self.first_event
        pause_start = midnight + (self.start_hour + (5.0 if self.night_owl else 3.75)) * HOUR
        pause_end = pause_start + HOUR
        events: list[tuple[int, dict[str, object]]] = []
        at = window_start
        while True:
            rate = self.requests_per_hour * intensity / self.session_length
            for change in self.changes:
                rate *= change.request_factor(at)
            if forced is not None:
                forced = None  # a new joiner's first session starts at the planned instant
            else:
                at += rng.expovariate(rate) * HOUR
            if at >= window_end:
                if events or day not in self.working_days or window_start >= min(window_end,
                                                                                  self.run_end):
                    break
                # An incident's day (gaming) is a day at work: a light user may draw no
                # session on it, and the incident would change nothing. Draw it again.
                at = window_start
                continue
            if pause_start <= at < pause_end and rng.random() < 0.75:
                continue  # lunch (dinner for night owls)
            self._session(at, weekend, events)
        if not weekend and not self.night_owl and rng.random() < 0.04:
            # now and then, one more question late in the evening
            self._session(midnight + rng.uniform(20.5, 23.5) * HOUR, weekend, events)
        if day in self.on_call_nights:  # paged: a session in the small hours
            self._session(midnight + rng.uniform(0.2, 5.5) * HOUR, False, events)
        self._record_active_hours(events)
        return events

    def _record_active_hours(self, events: list[tuple[int, dict[str, object]]]) -> None:
        hours: dict[int, int] = {}
        for ms, event in events:
            tokens = cast(int, event["input_tokens"]) + cast(int, event["output_tokens"])
            hours[ms // 3_600_000] = hours.get(ms // 3_600_000, 0) + tokens
        self._active_hours += len(hours)
        self._active_hour_tokens += sum(hours.values())

    def _session(self, at: float, weekend: bool, events: list[tuple[int, dict[str, object]]]
                 ) -> None:
        rng = self._rng
        agent = not weekend and self.agent_share > 0 and rng.random() < self.agent_share
        client = "agent" if agent else rng.choices(self.clients, self.client_weights)[0]
        model = self.model_at(at)
        if self.other_models and rng.random() < 0.15:
            model = rng.choice(self.other_models)
        long_context = self.long_context_share > 0 and rng.random() < self.long_context_share
        if long_context:
            self._long_context_session(at, model, "agent" if agent else client, events)
            return
        if agent:
            count, growth = rng.randint(*self.agent_turns), rng.uniform(0.03, 0.08)
        else:
            count = min(20, max(3, round(rng.lognormvariate(math.log(self.session_length), 0.45))))
            growth = {"chat": rng.uniform(0.03, 0.12), "ide": rng.uniform(0.0, 0.06)}.get(
                client, rng.uniform(0.0, 0.04))
        context = self._input_size()
        if self.big_request_share > 0 and rng.random() < self.big_request_share:
            context *= rng.lognormvariate(math.log(15), 0.5)  # "summarise this document"
        session = self._log.new_session()
        previous = 0.0
        for index in range(count):
            if index:
                gap = rng.uniform(4, 30) if agent else rng.lognormvariate(math.log(45), 0.75)
                at += min(180.0, max(10.0, gap)) if not agent else gap
            if at >= self.run_end:
                return
            input_factor, output_factor, padding, fingerprint = self._changed(at)
            input_tokens = int(context * input_factor * rng.lognormvariate(0, 0.08) + padding)
            output_tokens = int(self._output_size() * output_factor)
            if index:
                cache = int(previous * rng.uniform(0.5, 0.9))
            else:
                cache = int(input_tokens * rng.uniform(0, 0.3)) if rng.random() < 0.3 else 0
            self._emit(at, model, input_tokens, output_tokens, cache, client, session,
                       fingerprint or self._prompt(), events)
            previous = context * input_factor
            context = min(MAX_CONTEXT, context * (1 + growth * rng.uniform(0.5, 1.5)))

    def _input_size(self) -> float:
        """A session's first input: log-normal around the person's level, or a public
        trace's input at that level."""
        if self.size_sample:
            return math.exp(self.log_input) * self._rng.choice(self.size_sample)[0]
        return self._rng.lognormvariate(self.log_input, 0.6)

    def _output_size(self) -> float:
        if self.size_sample:
            return math.exp(self.log_output) * self._rng.choice(self.size_sample)[1]
        return self._rng.lognormvariate(self.log_output, 0.6)

    def _changed(self, at: float) -> tuple[float, float, float, str | None]:
        """What the person's changes do to a request at ``at``: input and output factors,
        padding, and a fingerprint to use instead of their own (or None)."""
        input_factor = output_factor = 1.0
        padding, fingerprint = 0.0, None
        for change in self.changes:
            input_factor *= change.input_factor(at)
            output_factor *= change.output_factor(at)
            padding += change.input_padding(at, self._rng)
            fingerprint = fingerprint or change.fingerprint(at, self._rng)
        return input_factor, output_factor, padding, fingerprint

    def _long_context_session(self, at: float, model: str, client: str,
                              events: list[tuple[int, dict[str, object]]]) -> None:
        """An IDE or agent session carrying its whole conversation: each turn's input is
        the last one plus its answer and a tool result, and is mostly read from cache."""
        rng = self._rng
        session = self._log.new_session()
        context, previous = self._input_size(), 0.0
        for index in range(rng.randint(20, 90)):
            if index:
                at += rng.uniform(4, 60)
            if at >= self.run_end:
                return
            input_factor, output_factor, padding, fingerprint = self._changed(at)
            output_tokens = int(self._output_size() * output_factor)
            cache = int(previous * rng.uniform(0.85, 0.99))
            self._emit(at, model, int(context * input_factor + padding), output_tokens, cache,
                       client, session, fingerprint or self._prompt(), events)
            previous = context
            context = min(MAX_CONTEXT, context + output_tokens + rng.uniform(0, 4000))

    def _emit(self, at: float, model: str, input_tokens: int, output_tokens: int, cache: int,
              client: str, session: str, fingerprint: str,
              events: list[tuple[int, dict[str, object]]]) -> None:
        """One request, as this person's producer reports it."""
        events.append(self._log.request(
            at, model, input_tokens, output_tokens, cache if self.reports_cache else 0, client,
            None if self.omits_session else session,
            None if self.omits_fingerprint else fingerprint))

    def _prompt(self) -> str:
        """People rarely ask the same thing twice: mostly new fingerprints, a few repeats."""
        rng = self._rng
        if self._recent and rng.random() < self.prompt_repeat:
            return rng.choice(self._recent)
        fingerprint = f"{rng.getrandbits(64):016x}"
        self._recent.append(fingerprint)
        return fingerprint
