"""Spike: one request, or one hour, far above what this user normally uses.

Baselines are kept on log10 tokens, where token counts are roughly normal, so a
user who legitimately uses 100x more than another is judged by their own scale.
An hour is scored while it runs, so a spike is caught within the hour, not after.

A long conversation (an agent, an IDE, a chat at the context window's limit) re-sends
its context every turn: its hours are many times a keyboard hour's, and ordinary for
the user. An hour that is mostly such re-sent context is judged against the user's own
hours of long conversations, not against their keyboard hours.

Sizes are counted in fresh tokens, those not read from the prompt cache: what was typed,
pasted or written this time. A tool that re-reads its context from the cache each turn
has requests many times a keyboard request in tokens, alike in fresh tokens; a spike is
fresh work. A request judged alone is one not read from the cache, counted whole; answered
briefly, it is judged against the user's usual request counted whole too: a cold start of a
context their warm turns read from the cache re-sends it in full, many times their fresh
turns. One writing more than a usual whole request is fresh work, judged as fresh.
"""

from __future__ import annotations

import math

from msgspec import field

from tokenradar.detectors.base import Detector, Finding, Observation, Slot
from tokenradar.detectors.baseline import EWStats
from tokenradar.detectors.calibration import (
    REQUEST_OVERDISPERSION,
    binomial_tail_decades,
    combined_decades,
    decades_score,
    normal_tail_decades,
    poisson_tail_decades,
    tail_score,
)
from tokenradar.detectors.context import FINGERPRINTS
from tokenradar.schemas.config import SpikeConfig
from tokenradar.schemas.kinds import SPIKE

MIN_LOG_STD = 0.1
"""Spread floor (log10): a very regular user still tolerates ~25% variation."""
REQUEST_MIN_LOG_STD = 0.35
"""Spread floor (log10) of a single request's size: however regular a user's requests, one
of them may carry a pasted document or a long file, so one request 20x the usual is
surprising but not one in a billion; 100x is. Hours of such requests are the hour's."""
READING_MIN_LOG_STD = 0.45
"""Spread floor (log10) of a document read's size (``min_request_ratio`` times the usual
request, answered in no more than a usual whole request: a document, a long file pasted in
and asked about): the most heavy-tailed of all; 80x the usual is a long document, 300x is
a spike."""
LOG10_MEAN_CORRECTION = math.log(10.0) / 2.0
"""For log-normal sizes, log10 of the mean is the mean log10 plus this times the variance."""
REQUESTS_PER_INDEPENDENT_SIZE = 3.0
"""An hour's requests are not independent draws of size: a session's grow together.
Their mean size is judged as if from one request in this many, or in as many as the
running session has had: a long conversation re-sends its growing context each turn."""
CONTEXT_STEP = 1.5
"""A conversation's request may carry up to this many times the input of its earlier
ones and still be its context piling up, not a spike of its own (the hour counts it)."""
HOURS_TO_JUDGE_BY_TOTALS = 40
"""Active hours known before the hour's fresh tokens alone can mark it out of line: a
younger mean moves too much (backtest: from 8 hours on, 3 more false alerts for one
more spike found)."""
HOURS_TO_JUDGE_SIZES = 20
"""Closed hours whose mean request size weigh as much as single requests' spread in
judging an hour's mean size: a few hours alike say little of how hours vary."""
REPEAT_FADING = 0.01
MIN_REPEAT_SHARE = 0.02
"""However seldom a user repeats a prompt, a repeat is never taken as rarer than this."""
CARRIED_GROWTH = 3.0
"""A conversation's request carries its context once its input has grown this many times
its first request's: each turn re-sends what the conversation has said so far."""
CARRIED_SHARE = 0.5
"""An hour is a long conversation's (agent, IDE, chat at the context window's limit) when
at least this share of its tokens re-sent a conversation's context."""
RECENT_SECONDS = 1800.0
"""How fast the share of recent tokens that carried context forgets (mean life)."""
MIN_CARRIED_HOURS = 3
"""A user's long-conversation hours known before such an hour's total is judged by them:
until then, by the team's hours (of every kind), as widely as a newcomer's."""
CARRIED_PRIOR_HOURS = 5
"""A young set of long-conversation hours is trusted as if it had this many fewer."""
MIN_CARRIED_LOG_STD = 0.4
"""Spread floor (log10) of long-conversation hours: a few turns of a chat and an hour of
an agent at its context window's limit are both such hours, hundreds of times apart."""
MIN_PACE_HOURS = 3
"""Active hours known before an hour's pace and request sizes are judged: a young profile's
hour is judged on them too, not only whole against its team's hours."""
YOUNG_PRIOR_HOURS = 20
"""A young profile's evidence of pace and sizes is shrunk as if it had this many more hours
of which nothing is known: its first agent session may be many times its first hours."""
MIN_PACE_LOG_STD = 0.35
"""Spread floor (natural log) of a user's requests per active hour: however steady their
pace, an hour 40% busier is ordinary; twice as busy is about 1 in 40, four times 1 in
30,000."""
LONG_CONVERSATION = 6
"""Requests of one conversation past which its hour's mean size is one draw of the user's."""
COUNT_ALONE_DECADES = 4.0
"""How far the user's own spread of requests per hour is trusted on its own (about four
times a steady user's pace): enough, with bigger or repeated requests, for a joint spike;
not enough alone for an agent session's many turns."""
WHOLE_SHARE_HOURS = 3
"""Closed hours known before the user's usual request counted whole is their usual fresh
request times their hours' tokens over their fresh tokens (until then, their fresh one):
a first hour or two may be one conversation's, all cold or all read from the cache."""
COLD_START_MIN_TEAM_COUNT = 50
COLD_START_MIN_LOG_STD = 0.4
"""A newcomer is judged by the team's spread at least this wide: people differ a lot."""


class SpikeSlot(Slot):
    per_request: EWStats = field(default_factory=EWStats)
    """log10 fresh tokens per request (fading by ``request_fading_factor``); states of
    version 7 learned whole tokens, and move to fresh ones as they fade."""
    per_hour: EWStats = field(default_factory=EWStats)
    """log10 tokens of the user's closed active hours (fading by ``fading_factor``)."""
    hour_size: EWStats = field(default_factory=EWStats)
    """log10 mean fresh tokens per request of the user's closed active hours: an agent's
    hours carry bigger requests than a chat's, so an hour's sizes are judged against
    whole hours."""
    repeats: EWStats = field(default_factory=EWStats)
    """Share of the user's requests that repeat a recent prompt."""
    carried_hours: EWStats | None = None
    """log10 tokens of the user's closed hours of long conversations (CARRIED_SHARE of their
    tokens re-sent context): an agent's hour at the context window's limit is judged
    against the user's other such hours, not against their hours at the keyboard. None
    until the first (most users' state stays the smaller)."""
    recent_carried: int = 0
    """Recent tokens that re-sent context, and all recent tokens, fading with time
    (RECENT_SECONDS): whether the user is in a long conversation now, and whether the
    hour that just closed ended in one."""
    recent_tokens: int = 0
    recent_input: int = 0
    """The largest input of the user's recent requests, fading with time (RECENT_SECONDS):
    two conversations on one model without session ids interleave, and neither looks
    like one, but each re-sends a context already seen."""
    fresh_hours: EWStats = field(default_factory=EWStats)
    """log10 fresh tokens (not read from the prompt cache) of the user's closed active
    hours: a long conversation re-reads its context from the cache every turn, so its
    hours and a keyboard hour differ many times in tokens, far less in fresh ones."""
    hour_fresh: int = 0
    """Fresh tokens of the running clock hour (the one ``closed_hour`` will close)."""
    recent_fresh: int = 0
    """Recent fresh tokens, fading as ``recent_tokens``: the running hour's fresh share."""


class SpikeDetector(Detector):
    """Scores each request's tokens and the running hour's tokens against the user's history.

    Parameters
    ----------
    config
        Thresholds and warm-up lengths; see :class:`tokenradar.schemas.config.SpikeConfig`.
    """

    declaration = SPIKE
    slot_type = SpikeSlot
    config: SpikeConfig

    def __init__(self, config: SpikeConfig) -> None:
        self.config = config

    def observe(self, slot: SpikeSlot, observation: Observation) -> Finding | None:
        config = self.config
        shift = observation.team_shift
        closed = observation.closed_hour
        # What of the recent counts is left since the user's last request.
        gap = observation.gap
        fading = math.exp(-gap / RECENT_SECONDS) if gap is not None and gap > 0 else 1.0
        closed_was_conversation, resent = _follow_conversations(slot, observation, fading)
        closed_fresh = _follow_fresh(slot, observation, fading)
        request = None
        usual_request = _baseline_or_team(slot.per_request, observation.team_per_request,
                                          config.min_history_requests)
        # A document read by the usual fresh request, as the hour's sizes are counted.
        reads = usual_request is not None and _reads(observation, usual_request, config)
        # A context re-sent (grown with its conversation, or read from the prompt cache)
        # is the hour's, not a request to judge alone.
        judged_alone = False
        if not (resent or observation.grew_with_session(CONTEXT_STEP)
                or observation.from_cache):
            # Answered briefly, against the user's usual request counted whole (a context
            # loaded); writing more than a usual whole request, against their usual fresh
            # request (fresh work: an answer is never read from the cache).
            usual_whole = _usual_whole_request(slot, usual_request)
            if usual_whole is not None and not _answered_briefly(observation, usual_whole):
                usual_whole = usual_request
            if usual_whole is not None:
                judged_alone = True
                request = _scored(usual_whole, observation.tokens, shift, config,
                                  config.min_request_ratio,
                                  READING_MIN_LOG_STD if _reads(observation, usual_whole, config)
                                  else REQUEST_MIN_LOG_STD)
        pace_hours = observation.usual_hourly_requests.count
        sizes_known = slot.per_request.count >= config.min_history_requests
        hour = (_scored_hour(slot, observation, config, one_draw=resent and reads)
                if pace_hours >= MIN_PACE_HOURS and sizes_known else None)
        if pace_hours < config.min_history_hours or not sizes_known:
            # A young profile: the hour whole against the user's hours, or their team's
            # while they have few; and its pace and sizes once a few hours are known.
            whole = _scored(_baseline_or_team(slot.per_hour, observation.team_per_hour,
                                              config.min_history_hours),
                            observation.hour_tokens, shift, config, config.min_ratio)
            if whole is not None and (hour is None or whole[0] > hour[0]):
                hour = whole
        conversation = hour is not None and _in_conversation(slot)
        if hour is not None and conversation:
            # A long conversation's hour re-sends its context turn after turn: its pace and
            # sizes say little; its total is judged against the user's own such hours.
            judged = _scored_conversation_hour(slot, observation)
            hour = None if judged is None else (min(hour[0], judged[0]), judged[1])
        # A person said this user's spikes are normal: learn them whole, hold nothing out.
        accepted = self.kind in observation.accepted

        def learn(baseline: EWStats, value: float, fading_factor: float) -> None:
            if accepted:
                baseline.update(value, fading_factor)
            else:
                baseline.update_clipped(value, MIN_LOG_STD, fading_factor)

        out_of_line = _far_above_usual_hours(slot.per_hour, observation, config)
        if accepted or (hour is None and not _grown(observation) and not out_of_line):
            # Requests of an hour already out of line are not learned as normal ones, nor
            # a conversation's re-sent context as the size of the user's requests: a
            # request's size is its fresh tokens (those not read from the prompt cache).
            learn(slot.per_request, math.log10(_fresh_tokens(observation) + 1),
                  config.request_fading_factor)
        if accepted or (hour is None and not out_of_line):
            slot.repeats.update(float(observation.repeated), REPEAT_FADING)
        if closed is not None:
            learn(slot.per_hour, math.log10(closed.tokens + 1), config.fading_factor)
            learn(slot.hour_size, math.log10(closed_fresh / closed.requests + 1),
                  config.fading_factor)
            learn(slot.fresh_hours, math.log10(closed_fresh + 1), config.fading_factor)
            if closed_was_conversation:
                slot.carried_hours = slot.carried_hours or EWStats()
                learn(slot.carried_hours, math.log10(closed.tokens + 1), config.fading_factor)

        if request is None and hour is None:
            return None
        # An hour that is mostly one request is that request, judged as heavy-tailed: not
        # an hour's spike when the request is not one (under ``min_request_ratio``).
        alone = judged_alone and 2 * observation.tokens >= observation.hour_tokens
        if hour is not None and not alone and (request is None or hour[0] > request[0]):
            score, expected = hour
            return Finding(
                score=score, feature="tokens_per_hour", observed=observation.hour_tokens,
                expected=expected,
                explanation=(
                    f"Usage in the last hour reached {observation.hour_tokens:,} tokens over "
                    f"about {observation.hour_requests} requests, "
                    f"{observation.hour_tokens / expected:.1f}x this user's usual "
                    f"{expected:,.0f} tokens in an active hour"
                    f"{' of a long conversation' if conversation else ''}."
                ),
            )
        if request is None:
            return None
        score, expected = request
        cached = observation.event.cache_read_tokens
        return Finding(
            score=score, feature="tokens_per_request", observed=observation.tokens,
            expected=expected,
            explanation=(
                f"One request used {observation.tokens:,} tokens"
                f"{f' ({cached:,} read from the prompt cache)' if cached else ''}, "
                f"{observation.tokens / expected:.1f}x this user's usual {expected:,.0f} "
                f"per request, cache reads included (model {observation.event.model})."
            ),
            single_event=True,
        )


def _carries_context(observation: Observation) -> bool:
    """Does this request re-send a conversation's context: a session's request whose input
    grew CARRIED_GROWTH times its first's, or mostly read from the prompt cache?"""
    return _grown(observation) or observation.from_cache


def _grown(observation: Observation) -> bool:
    """Is the request a session's whose input grew CARRIED_GROWTH times its first's?"""
    return (observation.session_requests > REQUESTS_PER_INDEPENDENT_SIZE
            and observation.session_growth >= CARRIED_GROWTH)


def _reads(observation: Observation, usual: EWStats, config: SpikeConfig) -> bool:
    """Is the request a document read: ``min_request_ratio`` times the user's usual request,
    answered in no more than a usual whole request? A document or a long file pasted in is
    read and answered as usual; a bigger task writes more too. A request with no answer at
    all (an embedding, a batch's input) is all input, judged as any other."""
    return (observation.tokens >= config.min_request_ratio * _usual_size(observation, usual)
            and _answered_briefly(observation, usual))


def _answered_briefly(observation: Observation, usual: EWStats) -> bool:
    """Is the request answered in no more than a usual request (``usual``), and answered
    at all (a request with no answer, an embedding or a batch's input, is all input)?"""
    return 0 < observation.event.output_tokens <= _usual_size(observation, usual)


def _usual_size(observation: Observation, usual: EWStats) -> float:
    """The tokens of ``usual`` (a log10 baseline), at the team's shift."""
    size: float = 10.0 ** (usual.mean + observation.team_shift)
    return size


def _usual_whole_request(slot: SpikeSlot, usual: EWStats | None) -> EWStats | None:
    """The usual request counted whole, with what it read from the prompt cache: the
    user's usual fresh request (``usual``) times how many times their hours' tokens are
    their fresh tokens, once WHOLE_SHARE_HOURS of them are known; a team's usual request
    (a newcomer's) is counted whole already.

    A warm turn teaches only its fresh part, so the usual fresh request of a user whose
    tools read their context from the cache is small; a cold start of that context (the
    cache expired, a new session) re-sends it whole, many times that, and is their usual
    work, not a spike.
    """
    if usual is not slot.per_request or slot.fresh_hours.count < WHOLE_SHARE_HOURS:
        return usual
    whole_over_fresh = max(slot.per_hour.mean - slot.fresh_hours.mean, 0.0)  # log10
    return EWStats(usual.count, usual.mean + whole_over_fresh, usual.var)


def _follow_conversations(slot: SpikeSlot, observation: Observation, fading: float
                          ) -> tuple[bool, bool]:
    """Count the request in the recent share of re-sent context. Whether the hour it
    closed, if any, ended in a long conversation; and whether the request is no bigger
    than one of the last minutes (CONTEXT_STEP), more input than output: a context
    re-sent, not a request to judge alone. ``fading``: what of the recent counts is left
    since the user's last request (RECENT_SECONDS)."""
    closed_was_conversation = observation.closed_hour is not None and _in_conversation(slot)
    tokens = observation.tokens
    carried = tokens if _carries_context(observation) else 0
    slot.recent_carried = round(slot.recent_carried * fading) + carried
    slot.recent_tokens = round(slot.recent_tokens * fading) + tokens
    event = observation.event
    recent_input = round(slot.recent_input * fading)
    resent = (event.input_tokens <= CONTEXT_STEP * recent_input
              and event.output_tokens < event.input_tokens)
    slot.recent_input = max(recent_input, event.input_tokens)
    return closed_was_conversation, resent


def _fresh_tokens(observation: Observation) -> int:
    """The request's tokens not read from the prompt cache: what was typed, pasted or
    written this time, not a context sent before."""
    return observation.fresh_input + observation.event.output_tokens


def _follow_fresh(slot: SpikeSlot, observation: Observation, fading: float) -> int:
    """Count the request's fresh tokens in the running clock hour and in the recent ones
    (``fading`` as the recent tokens fade); the fresh tokens of the hour the request
    closed, if any (else 0)."""
    fresh = _fresh_tokens(observation)
    slot.recent_fresh = round(slot.recent_fresh * fading) + fresh
    closed = 0
    if observation.closed_hour is not None:
        closed, slot.hour_fresh = slot.hour_fresh, 0
    slot.hour_fresh += fresh
    return closed


def _running_fresh(slot: SpikeSlot, observation: Observation) -> int:
    """Fresh tokens of the running hour: its tokens at the recent fresh share."""
    if slot.recent_tokens <= 0:
        return observation.hour_tokens
    share = min(slot.recent_fresh / slot.recent_tokens, 1.0)
    return round(observation.hour_tokens * share)


def _in_conversation(slot: SpikeSlot) -> bool:
    """Is the user's recent usage mostly a long conversation's re-sent context?"""
    return slot.recent_carried >= CARRIED_SHARE * slot.recent_tokens > 0


def _scored_conversation_hour(slot: SpikeSlot, observation: Observation
                              ) -> tuple[float, float] | None:
    """(score, expected tokens) of a long conversation's running hour: the less surprising
    of the user's own such hours and the team's hours (of every kind, as widely as a
    newcomer's); the team's alone while the user has fewer than MIN_CARRIED_HOURS. A young
    set of the user's hours is trusted as if it had CARRIED_PRIOR_HOURS fewer. None
    without a team to judge by.

    A user's long-conversation hours mix a few turns of a chat with hours of an agent: the
    first deep session of someone who so far chatted is new for them, not for their team.
    """
    team = _baseline_or_team(EWStats(), observation.team_per_hour, 1)
    if team is None:
        return None
    level = math.log10(observation.hour_tokens + 1) - observation.team_shift
    judged = (tail_score(team.z(level, COLD_START_MIN_LOG_STD)), team.mean)
    hours = slot.carried_hours
    if hours is not None and hours.count >= MIN_CARRIED_HOURS:
        decades = (normal_tail_decades(hours.z(level, MIN_CARRIED_LOG_STD))
                   * hours.count / (hours.count + CARRIED_PRIOR_HOURS))
        judged = min(judged, (decades_score(decades), hours.mean))
    score, mean = judged
    return score, 10.0 ** (mean + observation.team_shift)


def _baseline_or_team(own: EWStats, team: EWStats | None, min_history: int) -> EWStats | None:
    """The user's own baseline once warm; before that, the team's (a cold start), widened."""
    if own.count >= min_history:
        return own
    if team is None or team.count < COLD_START_MIN_TEAM_COUNT:
        return None
    return EWStats(team.count, team.mean, max(team.var, COLD_START_MIN_LOG_STD**2))


def _far_above_usual_hours(per_hour: EWStats, observation: Observation, config: SpikeConfig
                           ) -> bool:
    """Is the running hour ``min_ratio`` times the user's typical (median) active hour?

    A burst of requests each a few times the usual size, or repeating one prompt, is
    learned request by request, so the sizes' and repeats' baselines climb toward it and
    its hour looks ever less unusual: it becomes its own baseline before it is big enough
    to be judged. The hourly totals, learned only as hours close, still see the hour
    whole: while it is far above the user's typical hour, its requests are not learned.
    The typical hour, not the mean one: a user whose hours vary widely has a mean hour
    several times the typical one, and a spike would be learned until it passed that.
    """
    if per_hour.count < config.min_history_hours:
        return False
    typical = _usual_size(observation, per_hour)
    return _large_enough(observation.hour_tokens, typical, config.min_ratio, config)


def _usual_hour(slot: SpikeSlot, observation: Observation, config: SpikeConfig
                ) -> tuple[float, float]:
    """(usual tokens of an active hour, spread of one request's size in log10): the
    user's pace times their mean request size, or, once their hours are known, the mean
    of their hours if smaller. A spread-out user's mean request, times a skewed pace,
    overstates their hour many times over, and an hour 15x their usual one would not
    even be looked at."""
    per_request = slot.per_request
    spread = max(per_request.std, MIN_LOG_STD)
    mean_size = 10.0 ** (per_request.mean + LOG10_MEAN_CORRECTION * spread**2
                         + observation.team_shift)
    usual = observation.usual_hourly_requests.mean * mean_size
    hours = slot.per_hour
    if hours.count >= config.min_history_hours:
        usual = min(usual, 10.0 ** (hours.mean + LOG10_MEAN_CORRECTION * hours.var
                                    + observation.team_shift))
    return usual, spread


def _scored_hour(slot: SpikeSlot, observation: Observation, config: SpikeConfig,
                 one_draw: bool = False) -> tuple[float, float] | None:
    """(score, expected tokens) of the running hour: its pace, its request sizes and how
    much of it repeats one prompt, each judged against the user's own, combined.

    An hour's total is a count of requests times their sizes. The count is judged
    against the user's pace, the hour's mean size against the user's whole hours (not
    as many independent requests: an hour of agent work is bigger requests throughout,
    and that is one draw of the user's), and repeated prompts against how often the
    user repeats. Each may be only moderately up; together they can be rare. Once
    HOURS_TO_JUDGE_BY_TOTALS of the user's hours are known, an hour of fresh requests is
    judged whole by its fresh tokens against theirs too, and the more surprising counts.
    """
    per_request = slot.per_request
    shift = observation.team_shift
    requests = observation.hour_requests
    expected, spread = _usual_hour(slot, observation, config)
    tokens = observation.hour_tokens
    if not _large_enough(tokens, expected, config.min_ratio, config):
        return None
    pace = observation.usual_hourly_requests
    young = pace.count < config.min_history_hours
    # Requests come in clumps: a count is judged against a clumped Poisson of the user's
    # pace, and once their hours are known, against their own spread of requests per hour.
    count_decades = poisson_tail_decades(requests, pace.mean * REQUEST_OVERDISPERSION)
    if not young:
        # Once their hours are known, against their own spread of requests per hour: two
        # to four times a steady user's pace is rare for them, if not for everyone. Past
        # COUNT_ALONE_DECADES, only as far as the clumped Poisson agrees: one agent
        # session's turns are one draw of the user's, however many.
        count_decades = min(_count_decades(pace, requests),
                            max(count_decades, COUNT_ALONE_DECADES))
    # Until many hours are known, their mean sizes are taken to vary as single requests do.
    known = slot.hour_size.count
    size_spread = math.sqrt((known * slot.hour_size.var + HOURS_TO_JUDGE_SIZES * spread**2)
                            / (known + HOURS_TO_JUDGE_SIZES))
    # A young profile's hours say little of how its hour sizes vary: the mean of a few
    # requests is as heavy-tailed as a single request's, over its independent draws.
    # Nor is a long conversation's: its requests re-send one context, a single draw of
    # the user's; only the hour's requests outside it are further draws.
    size_floor = (REQUEST_MIN_LOG_STD / math.sqrt(max(1.0, requests
                                                      / REQUESTS_PER_INDEPENDENT_SIZE))
                  if young else MIN_LOG_STD)
    if not young and observation.session_requests > LONG_CONVERSATION:
        size_floor = REQUEST_MIN_LOG_STD / math.sqrt(
            max(1.0, requests / observation.session_requests))
    if one_draw:
        # A document read and asked about again: the hour's size is that document's, one
        # draw of the user's, however many times it is re-sent.
        size_floor = max(size_floor, REQUEST_MIN_LOG_STD)
    fresh_tokens = _running_fresh(slot, observation)
    size_z = (math.log10(fresh_tokens / requests + 1) - shift
              - (slot.hour_size.mean if known else per_request.mean)) / max(size_spread,
                                                                            size_floor)
    size_decades = normal_tail_decades(size_z)
    # Repeats join the evidence only when they add to it: an hour of the user's usual
    # repeats says nothing either way.
    decades = max(combined_decades(count_decades, size_decades),
                  combined_decades(count_decades, size_decades,
                                   _repeat_decades(slot.repeats, observation)))
    if (slot.fresh_hours.count >= HOURS_TO_JUDGE_BY_TOTALS and not one_draw
            and not _grown(observation)):
        # The hour's fresh tokens against the user's hours' fresh tokens: how a steady
        # user's hour of moderately more, moderately bigger fresh requests stands out. A
        # long conversation's context read from the cache is no work of the hour: in
        # tokens, its hours and keyboard hours are many times apart, in fresh tokens not.
        # Not while a conversation's input grows turn after turn: it re-sends a context
        # (without the cache), one draw of the user's.
        fresh = math.log10(fresh_tokens + 1) - shift
        decades = max(decades, normal_tail_decades(slot.fresh_hours.z(fresh, MIN_LOG_STD)))
    if young:
        # A young profile's evidence, shrunk by how little is known of it.
        decades *= pace.count / (pace.count + YOUNG_PRIOR_HOURS)
    return decades_score(decades), expected


def _count_decades(pace: EWStats, requests: int) -> float:
    """Surprise of ``requests`` in an hour given the user's own spread of requests per
    active hour (a log-normal with its mean and variance): an agent's hours range from a
    handful of requests to hundreds, far beyond a clumped Poisson's."""
    if pace.count < 2 or pace.mean <= 0:
        return 0.0
    log_var = math.log(1.0 + pace.var / pace.mean**2)
    log_mean = math.log(pace.mean) - log_var / 2.0
    return normal_tail_decades((math.log(requests) - log_mean)
                               / max(math.sqrt(log_var), MIN_PACE_LOG_STD))


def _repeat_decades(repeats: EWStats, observation: Observation) -> float:
    """Surprise of the recent prompts' repeats, given how often the user repeats. Each
    counts: one prompt sent again and again is what the evidence is about."""
    recent = round(observation.repeat_share * FINGERPRINTS)
    usual = max(repeats.mean, MIN_REPEAT_SHARE) if repeats.count else 0.5
    return binomial_tail_decades(recent, FINGERPRINTS, min(usual, 1.0))


def _scored(baseline: EWStats | None, tokens: int, team_shift: float, config: SpikeConfig,
            min_ratio: float, min_std: float = MIN_LOG_STD) -> tuple[float, float] | None:
    """(score, expected tokens) if ``tokens`` is scoreable and large enough to matter."""
    if baseline is None:
        return None
    expected = 10.0 ** (baseline.mean + team_shift)
    if not _large_enough(tokens, expected, min_ratio, config):
        return None
    return tail_score(baseline.z(math.log10(tokens + 1) - team_shift, min_std)), expected


def _large_enough(tokens: int, expected: float, min_ratio: float, config: SpikeConfig) -> bool:
    """Enough tokens to matter (``min_tokens``), and ``min_ratio`` times the expected."""
    return tokens >= config.min_tokens and tokens >= min_ratio * expected
