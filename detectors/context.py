"""A user's running context: the buckets, habits and recent patterns every detector reads.

Advanced once per event, before the detectors look at it: the running hour, rate
window and day; which hours and weekdays the user is usually active (a compact
24 + 7 profile learned on active days only, so a vacation changes nothing); the
recent prompt fingerprints; the current session.
"""

from __future__ import annotations

import functools
import math
import zlib

from msgspec import field

from tokenradar.detectors.base import ClosedBucket, unseen_share
from tokenradar.detectors.baseline import EWStats
from tokenradar.detectors.records import Ints, Record

HOUR = 3600.0
DAY = 86_400.0
FINGERPRINTS = 32
"""How many recent prompt fingerprints are remembered, for repetition."""
ABSENCE_DAYS = 4
"""A longer silence is an absence: its days do not count as inactive weekdays."""
YOUNG_PROFILE_DAYS = 10
"""Active days before a user's own hours are known well enough to stand alone."""
SPAN_SHARE = 0.5
"""How usual a young profile takes an hour within its working span (see _working_span)."""
SPAN_TRIM = 0.1
"""Share of a young profile's active hours (hour-days) that may lie outside its working
span: a stray late evening among a week of working days."""
ROUND_THE_CLOCK_HOURS = 20
"""An identity active in at least this many hours of the day..."""
ROUND_THE_CLOCK_SHARE = 0.75
"""...each on at least this share of its days..."""
ROUND_THE_CLOCK_DAYS = 3
"""...over at least this many active days runs around the clock: a machine (a pipeline,
a bot, an indexer). No person works twenty hours a day for days, on call or not, and a
person's one night of a runaway agent is one day in their profile, not three in four."""
CENTRELESS = 0.1
"""Hours so evenly spread that their circular mean is this short a share of their sum
have no centre (a person's eight-hour day: 0.83)."""
TEAM_PRIOR_DAYS = 10
"""Active days of the user's own that their team's hours weigh as, while young: as many
as it takes a profile to stand alone."""
LOCAL_MIDDAY = 13.0
DAILY_FADING = 0.05
HOURLY_FADING = 0.05
MIN_LEVEL_DAYS = 5
"""Days of history before a user's day is compared with their usual level."""
MIN_REQUESTS_STD = 1.0
"""Spread floor of requests per active hour, for clipping what an hour teaches."""
SLICE = 600.0
SLICES = 6
"""The last hour is kept as six 10-minute slices: a burst across the top of the hour
is counted whole, to within 10 minutes."""


SESSIONS = 8
"""Sessions followed at once: an agent's sub-agents and a person's chat run side by side."""
INFERRED_SESSION_GAP = 1800.0
"""Seconds within which a request without a session id may continue the previous one's."""
INFERRED_SESSIONS = 4
"""Conversations inferred without session ids followed at once (a few sub-agents)."""
CARRY_FLOOR = 0.9
"""A turn carries its conversation's context: at least this share of the last input
(a little less: a tool result dropped from it)..."""
CARRY_JUMP = 3.0
"""...and at most this many times it: a bigger jump is something new pasted in."""

PROFILE_SCALE = 10_000
"""The usual hours and weekdays are shares rounded to 4 decimals, kept as whole
ten-thousandths (2-3 bytes each stored, not 9): ``k / PROFILE_SCALE`` is exactly the
float ``round(share, 4)`` gave."""
PROMPT_DIGEST_BYTES = 4
"""A prompt fingerprint's ``digest32``, in the ring of recent ones."""

SIGNATURE_STEPS = (math.log(1.05), math.log(1.1))
"""Widths of the input and output token buckets of a prompt signature: a resent prompt
costs the same input within a few percent, its answer about the same output."""


def prompt_signature(input_tokens: int, output_tokens: int) -> str | None:
    """A stand-in for a missing ``prompt_fingerprint``: a script sending the same prompt
    again matches its own token counts, while a person's varied prompts seldom match
    both (about 1 request in 11 matches one of the last 32 by chance, in simulated
    traffic). None without an answer to match (an embedding): input alone matches
    too often."""
    if output_tokens <= 0:
        return None
    input_step, output_step = SIGNATURE_STEPS
    return (f"tokens:{round(math.log(input_tokens + 1) / input_step)}"
            f":{round(math.log(output_tokens + 1) / output_step)}")


def digest32(text: str) -> int:
    """A stable 32-bit digest (CRC-32: cheap, and the same on every machine and run)."""
    return zlib.crc32(text.encode())


class Bucket(Record):
    """A running time bucket (an hour, a rate window): its start, tokens and requests."""

    start: float = -1.0
    tokens: int = 0
    requests: int = 0

    def advance(self, start: float, tokens: int) -> ClosedBucket | None:
        """Add a request of ``tokens`` in the bucket starting at ``start``; the bucket it
        closed, if it was active."""
        closed = None
        if start > self.start:
            if self.requests:
                closed = ClosedBucket(self.start, self.tokens, self.requests)
            self.start, self.tokens, self.requests = start, 0, 0
        self.tokens += tokens
        self.requests += 1
        return closed


class Day(Record):
    """The user's running local day."""

    number: int = -1
    tokens: int = 0
    requests: int = 0
    hours_mask: int = 0
    """Bit h set: a request in UTC hour h."""


class Slices(Record):
    """The last hour as SLICES 10-minute slices, newest first."""

    start: float = -1.0
    """Start of the newest slice."""
    tokens: list[int] = field(default_factory=lambda: [0] * SLICES)
    requests: list[int] = field(default_factory=lambda: [0] * SLICES)


class Session(Record):
    """One of the user's latest sessions (conversations, agent runs)."""

    digest: int
    """``digest32`` of the session id (of the model, for requests without one)."""
    requests: int
    first_input: int
    """Input tokens of its first request..."""
    most_input: int
    """...the most of any of its requests..."""
    last_input: int = 0
    """...and of its last request, at ``last_time``."""
    last_time: float = -1.0
    model: int = 0
    """For a conversation inferred without a session id: ``digest32`` of its model (0:
    one with an id)."""


class UsageContext(Record):
    last_time: float = -1.0
    hour: Bucket = field(default_factory=Bucket)
    last_slices: Slices = field(default_factory=Slices)
    window: Bucket = field(default_factory=Bucket)
    day: Day = field(default_factory=Day)
    utc_offset_hours: int = 0
    """The user's estimated local offset, from when they are active; sets day bounds."""
    profile_days: int = 0
    hour_profile: Ints = field(default_factory=lambda: Ints([0] * 24))
    """Share of active days with a request in each UTC hour, in ten-thousandths."""
    weekday_profile: Ints = field(default_factory=lambda: Ints([0] * 7))
    """Share of days of each weekday (0: Monday) that were active, in ten-thousandths."""
    fingerprints: bytes = b""
    """The last FINGERPRINTS prompts' digests, oldest first, PROMPT_DIGEST_BYTES each..."""
    repeats: int = 0
    """...and which of them (bit i: the i-th) had been seen in the ring before."""
    sessions: list[Session] = []
    """The latest SESSIONS sessions, newest first (agents run several at once)."""
    daily_level: EWStats = field(default_factory=EWStats)
    """Tokens per active day (linear, so short days barely move it; DAILY_FADING): the
    user's long-run level, which the team compares."""
    hourly_requests: EWStats = field(default_factory=EWStats)
    """Requests per active hour (HOURLY_FADING): the user's usual pace."""
    round_the_clock: bool = False
    """The identity runs around the clock (``ROUND_THE_CLOCK_HOURS``), as of its last
    closed day: learned with its hours, and unlearned as they fade."""

    def last_hour(self) -> tuple[int, int]:
        """(tokens, requests) of the last hour (50 to 60 minutes, by whole slices)."""
        slices = self.last_slices
        return sum(slices.tokens), max(1, sum(slices.requests))

    def local_day(self, time: float) -> int:
        return int((time + self.utc_offset_hours * HOUR) // DAY)

    def local_hour(self, time: float) -> int:
        return int((time + self.utc_offset_hours * HOUR) % DAY // HOUR)

    def usual_activity(self, time: float, around: int = 0,
                       team_hours: list[float] | None = None) -> float:
        """How often the user is active at this hour and weekday (0 = never, 1 = always);
        with ``around``, at the busiest hour within that many hours of this one.

        A young profile (under YOUNG_PROFILE_DAYS active days) has not seen most of its
        working hours and weekdays yet: its weekdays are not judged, an hour within its
        working span (``_working_span``) is usual, and each other hour's share is shrunk
        toward its team's (``team_hours``: share of member-days active in each hour, in
        this user's local time), as if the team's hours were TEAM_PRIOR_DAYS of the user's
        own: what little is known moves it only so far. An hour never seen in N days
        (with the team's: N + TEAM_PRIOR_DAYS) is not "never", only about 1 in N+1.
        """
        return self.usual_activities(time, around, team_hours)[1]

    def usual_activities(self, time: float, around: int,
                         team_hours: list[float] | None = None) -> tuple[float, float]:
        """:meth:`usual_activity` at this hour, and within ``around`` hours of it: both
        at once, as every event's observation reads both."""
        hour = int(time % DAY // HOUR)
        days = self.profile_days
        profile = self.hour_profile  # ten-thousandths: max(k) / scale is max(k / scale)
        if days >= YOUNG_PROFILE_DAYS:
            here = profile[hour] / PROFILE_SCALE
            nearby = max([profile[h % 24] for h in range(hour - around, hour + around + 1)]
                         ) / PROFILE_SCALE
            weekday = (self.local_day(time) + 3) % 7  # day 0 of the epoch was a Thursday
            usual_today = self.weekday_profile[weekday] / PROFILE_SCALE
            here, nearby = min(here, usual_today), min(nearby, usual_today)
        else:
            # A week or so of days has not shown every weekday a person works on: a young
            # profile's Thursday is not an off day because its first days were Mon-Wed.
            span = self._working_span()

            def share(h: int) -> float:
                own = profile[h] / PROFILE_SCALE
                if h in span:  # between hours the young profile was seen at work
                    return max(own, SPAN_SHARE)
                if team_hours is None:
                    return own
                return (days * own + TEAM_PRIOR_DAYS * team_hours[h]) / (days + TEAM_PRIOR_DAYS)

            here = share(hour)
            nearby = max([share(h % 24) for h in range(hour - around, hour + around + 1)])
        floor = unseen_share(self.activity_days(team_hours))
        return max(here, floor), max(nearby, floor)

    def _working_span(self) -> frozenset[int]:
        """The shortest run of hours, around the clock, holding all but SPAN_TRIM of the
        user's active hours (each hour weighed by the days it was seen at): a few days have
        not shown every hour of a working day, nor of one spread over many hours, but one
        late evening or one night on call among many working hours is no edge of it (it
        stretched young profiles' spans over evenings and nights, where agents then ran
        for hours unjudged); that hour keeps its own share.

        >>> context = UsageContext(hour_profile=[0] * 24)
        >>> for hour in (22, 23, 2, 5):
        ...     context.hour_profile[hour] = PROFILE_SCALE // 2
        >>> sorted(context._working_span())
        [0, 1, 2, 3, 4, 5, 22, 23]
        >>> context.hour_profile = [PROFILE_SCALE if 9 <= h < 17 else 0 for h in range(24)]
        >>> context.hour_profile[21] = PROFILE_SCALE // 4
        >>> sorted(context._working_span())
        [9, 10, 11, 12, 13, 14, 15, 16]
        """
        return _span_of(tuple(self.hour_profile))

    def activity_days(self, team_hours: list[float] | None) -> int:
        """Days of knowledge behind ``usual_activity``: the user's active days, and while
        young, TEAM_PRIOR_DAYS more for their team's hours."""
        young = self.profile_days < YOUNG_PROFILE_DAYS
        return self.profile_days + (TEAM_PRIOR_DAYS if young and team_hours is not None else 0)

    def local_mask(self, hours_mask: int) -> int:
        """A day's UTC hours mask (bit h: UTC hour h) as this user's local hours."""
        offset = self.utc_offset_hours
        return sum(1 << ((h + offset) % 24) for h in range(24) if hours_mask >> h & 1)

    def utc_hours(self, hours: list[float]) -> list[float]:
        """A profile of this user's local hours by UTC hour (index: UTC hour)."""
        offset = self.utc_offset_hours
        return [hours[(h + offset) % 24] for h in range(24)]

    def advance_buckets(self, time: float, tokens: int, window_seconds: float,
                        learn_whole: bool = False
                        ) -> tuple[ClosedBucket | None, ClosedBucket | None, ClosedBucket | None]:
        """Add the event to the running hour, window and day; return those it closed
        (``learn_whole``: the closed hour's pace learned unclipped)."""
        closed_hour = self.hour.advance(time - time % HOUR, tokens)
        if closed_hour is not None:
            # Clipped: a burst's own hour, closing while the burst still fills the last
            # hour, must not raise the pace that burst is judged by; unless a person said
            # such hours are this user's usual.
            if learn_whole:
                self.hourly_requests.update(closed_hour.requests, HOURLY_FADING)
            else:
                self.hourly_requests.update_clipped(closed_hour.requests, MIN_REQUESTS_STD,
                                                    HOURLY_FADING)
        self._advance_slices(time, tokens)
        closed_window = self.window.advance(time - time % window_seconds, tokens)
        closed_day = None
        today = self.local_day(time)
        day = self.day
        if today > day.number:
            if day.requests:
                closed_day = ClosedBucket(day.number, day.tokens, day.requests,
                                          day.hours_mask.bit_count(), day.hours_mask)
                self._learn_day(day.number, day.hours_mask, today)
                today = self.local_day(time)
            day = self.day = Day(today)
        day.tokens += tokens
        day.requests += 1
        day.hours_mask |= 1 << int(time % DAY // HOUR)
        self.last_time = max(self.last_time, time)
        return closed_hour, closed_window, closed_day

    def running_day(self) -> tuple[int, int]:
        """The running day so far: its tokens and its active hours."""
        return self.day.tokens, self.day.hours_mask.bit_count()

    def learn_daily_level(self, day: ClosedBucket) -> float | None:
        """The user's usual tokens per day before ``day`` (None while young); then learn it."""
        level = self.daily_level
        if level.count < MIN_LEVEL_DAYS or level.mean <= 0:
            level.update(day.tokens, DAILY_FADING)
            return None
        usual = level.mean
        # A day counts at most three usual days, so one wild day cannot move the level far.
        level.update(min(day.tokens, 3.0 * usual), DAILY_FADING)
        return usual

    def _learn_day(self, day: int, hours_mask: int, today: int) -> None:
        """Learn the usual hours and weekdays from one active day."""
        self.profile_days += 1
        rate = max(0.1, 1.0 / self.profile_days)
        hours = [round(p + rate * (((hours_mask >> h) & 1) - p), 4)
                 for h, p in enumerate(share / PROFILE_SCALE for share in self.hour_profile)]
        weekdays = [share / PROFILE_SCALE for share in self.weekday_profile]
        weekdays[(day + 3) % 7] += rate * (1.0 - weekdays[(day + 3) % 7])
        if today - day <= ABSENCE_DAYS:
            for quiet in range(day + 1, today):
                weekdays[(quiet + 3) % 7] *= 1.0 - rate
        self.hour_profile = Ints([round(p * PROFILE_SCALE) for p in hours])
        self.weekday_profile = Ints([round(round(p, 4) * PROFILE_SCALE) for p in weekdays])
        self.utc_offset_hours = _offset_from(hours, self.utc_offset_hours)
        self.round_the_clock = (self.profile_days >= ROUND_THE_CLOCK_DAYS and sum(
            share >= ROUND_THE_CLOCK_SHARE for share in hours) >= ROUND_THE_CLOCK_HOURS)

    def remember_fingerprint(self, fingerprint: str | None) -> tuple[float, bool]:
        """Remember the prompt's fingerprint; return the share of recent prompts repeated,
        and whether this one repeats a recent one."""
        repeated = False
        if fingerprint is not None:
            digest = digest32(fingerprint).to_bytes(PROMPT_DIGEST_BYTES, "big")
            ring = self.fingerprints
            repeated = _holds(ring, digest)
            self.repeats |= repeated << len(ring) // PROMPT_DIGEST_BYTES
            ring += digest
            if len(ring) > FINGERPRINTS * PROMPT_DIGEST_BYTES:
                ring = ring[PROMPT_DIGEST_BYTES:]
                self.repeats >>= 1
            self.fingerprints = ring
        kept = len(self.fingerprints) // PROMPT_DIGEST_BYTES
        if not kept:
            return 0.0, repeated
        return self.repeats.bit_count() / kept, repeated

    def advance_session(self, session_id: str | None, model: str, input_tokens: int,
                        time: float) -> tuple[int, int, int]:
        """(requests so far, input tokens of the session's first request and the most of
        its earlier ones: this one's own for a session's first).

        Without a ``session_id``, a request continues a conversation of its model that it
        could be the next turn of: within INFERRED_SESSION_GAP of its last request, and
        carrying its context, no less than CARRY_FLOOR of its last input and no more than
        CARRY_JUMP times it (a bigger jump is something new, pasted). An agent's
        sub-agents run side by side, each growing: a request continues the one whose last
        input is closest below its own (else closest above), so conversations interleaved
        are told apart. Padding's filler jumps at its first request, and its requests,
        about the same size each time, do not keep growing.

        >>> context = UsageContext()
        >>> [context.advance_session(None, "m", tokens, 60.0 * i)[0]
        ...  for i, tokens in enumerate((2000, 2100, 2600, 1500, 3900, 12900, 3100))]
        [1, 2, 3, 1, 4, 1, 2]
        >>> [context.advance_session(None, model, tokens, 600 + 60.0 * i)[0]
        ...  for i, (model, tokens) in enumerate((("m", 4000), ("n", 90), ("m", 4100)))]
        [5, 1, 6]
        >>> [context.advance_session(name, "m", tokens, 900 + 60.0 * i)[0]
        ...  for i, (name, tokens) in enumerate((("a", 9000), ("b", 200), ("a", 100)))]
        [1, 1, 2]
        """
        sessions = self.sessions
        if session_id is None:
            session = self._inferred_session(digest32(model), input_tokens, time)
        else:
            digest = digest32(session_id)
            found = None
            for known in sessions:
                if known.digest == digest:
                    found = known
                    break
            session = found if found is not None else Session(digest, 0, input_tokens,
                                                              input_tokens)
        if not sessions or sessions[0] is not session or len(sessions) > SESSIONS:
            others = [s for s in sessions if s is not session]
            if session.model:  # an inferred conversation: the oldest past INFERRED_SESSIONS go
                inferred = [s for s in others if s.model]
                if len(inferred) >= INFERRED_SESSIONS:
                    dropped = {id(s) for s in inferred[INFERRED_SESSIONS - 1:]}
                    others = [s for s in others if id(s) not in dropped]
            self.sessions = [session, *others][:SESSIONS]
        most_input = session.most_input
        session.requests += 1
        session.most_input = max(most_input, input_tokens)
        session.last_input, session.last_time = input_tokens, time
        return session.requests, session.first_input, most_input

    def _inferred_session(self, model: int, input_tokens: int, time: float) -> Session:
        """The conversation of ``model`` a request without a session id continues, or a
        new one (see ``advance_session``)."""
        below = above = None
        for session in self.sessions:
            if (session.model != model or not 0 <= time - session.last_time
                    <= INFERRED_SESSION_GAP
                    or not CARRY_FLOOR * session.last_input <= input_tokens
                    <= CARRY_JUMP * max(session.last_input, 1)):
                continue
            if session.last_input <= input_tokens:
                if below is None or session.last_input > below.last_input:
                    below = session
            elif above is None or session.last_input < above.last_input:
                above = session
        found = below or above
        if found is not None:
            return found
        # A new conversation: its own digest, from its model and its start.
        digest = digest32(f"\x00{model}:{time}")
        return Session(digest, 0, input_tokens, input_tokens, model=model)

    def _advance_slices(self, time: float, tokens: int) -> None:
        slices = self.last_slices
        start = time - time % SLICE
        age = int((slices.start - start) // SLICE)  # an empty ring (start -1) is ages old
        if age < 0:  # a newer slice: older ones move down, the oldest go
            moved = min(SLICES, -age)
            slices.tokens = [0] * moved + slices.tokens[:SLICES - moved]
            slices.requests = [0] * moved + slices.requests[:SLICES - moved]
            slices.start = start
            age = 0
        if age < SLICES:  # a late event lands in its own slice, if still within the hour
            slices.tokens[age] += tokens
            slices.requests[age] += 1


@functools.lru_cache(maxsize=4096)
def _span_of(hour_profile: tuple[int, ...]) -> frozenset[int]:
    """``UsageContext._working_span`` of an hour profile: read for a young profile's every
    event, and the same until its next day closes, so kept for the profiles met lately."""
    total = sum(hour_profile)
    if not total:
        return frozenset()
    least = (1.0 - SPAN_TRIM) * total
    best_start, best_length = 0, 24
    for start, share in enumerate(hour_profile):
        if not share:
            continue
        held = 0
        for length in range(1, best_length):
            held += hour_profile[(start + length - 1) % 24]
            if held >= least:
                best_start, best_length = start, length
                break
    return frozenset((best_start + k) % 24 for k in range(best_length))


def _holds(ring: bytes, digest: bytes) -> bool:
    """Is ``digest`` one of the ring's (at a digest's place, not straddling two)?"""
    at = ring.find(digest)
    while at >= 0 and at % PROMPT_DIGEST_BYTES:
        at = ring.find(digest, at + 1)
    return at >= 0


def _offset_from(hour_profile: list[float], previous: int = 0) -> int:
    """Offset that puts the centre of the user's active hours at local early afternoon;
    ``previous`` for an identity active around the clock, which has no centre: its
    estimate would jump from day to day, and each jump would close a day early.

    >>> _offset_from([1.0 if 9 <= h < 17 else 0.0 for h in range(24)])
    0
    >>> _offset_from([1.0] * 23 + [0.9], previous=3)
    3
    """
    sin = sum(p * math.sin(2 * math.pi * h / 24) for h, p in enumerate(hour_profile))
    cos = sum(p * math.cos(2 * math.pi * h / 24) for h, p in enumerate(hour_profile))
    if math.hypot(sin, cos) <= CENTRELESS * sum(hour_profile):
        return previous
    centre = (math.degrees(math.atan2(sin, cos)) / 15.0) % 24
    offset = round(LOCAL_MIDDAY - centre)
    return (offset + 11) % 24 - 11
