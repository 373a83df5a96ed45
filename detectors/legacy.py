"""Older releases' stored states, read into today's records: release ae4055c's JSON
with numbered lists, the user state records of schema versions 3, 4 and 5, and the team
state records of versions 2 and 3.

Up to release ae4055c, a user's state, a team's and a reorder buffer were stored as
JSON, each detector's numbers and the usage context as lists read back by position.
This module is the one place that still knows those positions: a worker that finds
such a state in its changelog reads it here, once, into today's records
(:mod:`tokenradar.detectors.records`), and stores it in today's form at its next
write. Remove the module when no changelog can hold a state written by ae4055c.

Whatever ae4055c could load loads, as ae4055c read it: its own layouts, and the older
ones it still recognised (by their lengths, which are frozen now) in the state of a
user not seen since an earlier upgrade. A slot of a detector ae4055c did not have
starts afresh.

A user state of version 5 is today's record but for its event ids' fingerprints (2 bytes,
kept apart as ``SeenIds.narrow``: 4 bytes now). One of version 4 is version 5's but for
six fields of the gaming slot no longer read (``GAMING_V4_UNREAD``), and one of version 3
is version 4's but for the usage context's usual hours and weekdays (floats then,
ten-thousandths now) and its recent prompts (a list of ``digest << 1 | repeated`` then,
the digests' bytes and a mask of repeats now). A team state of version 3 is today's
record but for the last members seen, written and never read (``TEAM_V3_UNREAD``), and
one of version 2 is version 3's but for four more fields no longer read
(``TEAM_V2_UNREAD``).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any

import msgspec

from tokenradar.detectors import records
from tokenradar.detectors.base import Slot
from tokenradar.detectors.baseline import EWStats
from tokenradar.detectors.context import (
    PROFILE_SCALE,
    PROMPT_DIGEST_BYTES,
    Bucket,
    Day,
    Session,
    Slices,
    UsageContext,
)
from tokenradar.detectors.creep import CreepSlot, CreepTrack, Days
from tokenradar.detectors.drift import DriftSlot, PageHinkley
from tokenradar.detectors.gaming import NO_LEVEL, GamingSlot
from tokenradar.detectors.new_pattern import PatternSlot, Sighting
from tokenradar.detectors.rate import RateSlot
from tokenradar.detectors.renormalisation import DailyMaxima
from tokenradar.detectors.reorder import StoredBuffer
from tokenradar.detectors.runaway_agent import RunSlot
from tokenradar.detectors.scripted_loop import LoopSlot
from tokenradar.detectors.spike import SpikeSlot
from tokenradar.detectors.state import (
    DAY_SECONDS,
    DIGEST_BYTES,
    FINGERPRINT_BYTES,
    Incident,
    SeenIds,
    UserState,
)
from tokenradar.detectors.team import TeamDay, TeamState

UNSET = 1e300
"""How ae4055c stored a Page-Hinkley test's +inf (JSON has no infinity)."""


def user_state(raw: bytes) -> UserState:
    """A user's state as ae4055c stored it (codec 2, or codec 1 of the release before),
    or as a record of schema version 3, 4 or 5."""
    if raw[:1] != b"{":
        return _user_state_record(raw)
    document = _document(raw, "user state", (1, 2))
    context = _context(document["context"])
    seen = (_seen(document["seen"]) if document["v"] == 2
            else _seen_codec1(document["seen"], context.last_time))
    slots: dict[str, Slot] = {}
    for name, values in document["slots"].items():
        slot = _slot(name, values)
        if slot is not None:
            slots[name] = slot
    return UserState(
        user_id=document["user"], team=document["team"], events=document["events"],
        context=context, recent_ids=list(document["recent"]), seen=seen, slots=slots,
        incidents={kind: _incident(values) for kind, values in document["incidents"].items()},
        day_maxima=document.get("daymax", {}),
        alert_times=[(time, kind) for time, kind in document.get("alerted", [])],
    )


def team_state(raw: bytes) -> TeamState:
    """A team's state as ae4055c stored it (codec 1), or as a record of schema version 2
    or 3."""
    if raw[:1] != b"{":
        return _team_state_record(raw)
    document = _document(raw, "team state", (1,))
    number, tokens, usual, members = document["day"][:4]
    recent, _, per_request, per_hour = (_stats(values) for values in document["stats"])
    member_days, *hour_profile = document.get("hours", [0, *[0.0] * 24])
    maxima = DailyMaxima()
    for detector, pairs in document.get("maxima", []):
        for index, count in zip(pairs[::2], pairs[1::2], strict=True):
            maxima.add_count(detector, int(index), int(count))
    incident = document["incident"]
    return TeamState(
        team=document["team"], day=TeamDay(int(number), tokens, usual, int(members)),
        recent=recent, per_request=per_request, per_hour=per_hour,
        incident=None if incident is None else _incident(incident),
        hour_profile=hour_profile, member_days=int(member_days), maxima=maxima,
    )


def reorder_buffer(raw: bytes) -> StoredBuffer:
    """A reorder buffer as ae4055c stored it (codec 1)."""
    document = _document(raw, "reorder buffer", (1,))
    frontier = document["frontier"]
    return StoredBuffer(newest=dict(document["newest"]),
                        frontier=-math.inf if frontier is None else frontier,
                        held=list(document["held"]))


CONTEXT, SEEN, SLOT_VALUES = 3, 5, 6
"""Where versions 3 to 5 kept the usage context, the ids seen and the slots in a user's
state..."""
HOUR_PROFILE, WEEKDAY_PROFILE, FINGERPRINTS = 7, 8, 9
"""...and where version 3 kept these in the context."""
GAMING_V4_UNREAD = (0, 2, 4, 5, 6, 7)
"""The gaming slot's fields versions 3 and 4 stored and nothing reads: the fresh input's
usual and recent level (before starts were ranked), and four run counters."""
GAMING_V7_FIELDS, GAMING_RUN = 7, 3
"""How many fields the gaming slot had in versions 3 (less those unread) to 7, and where
its run's starts were."""
TEAM_V2_UNREAD = (2, 4, 5, 6)
"""The team state's fields version 2 stored and nothing reads: its members' day ratios,
its noise, its days up and their evidence (before each member's working day was kept)..."""
TEAM_V3_UNREAD = (5,)
"""...and the one version 3 stored: the last members seen."""


def _user_state_record(raw: bytes) -> UserState:
    """A user state of schema version 3, 4 or 5, as today's record."""
    try:
        version, values = records.stored_version(raw), records.body(raw)
        values[SEEN] = _narrow(values[SEEN])
        if version == 3:
            context = values[CONTEXT]
            context[HOUR_PROFILE] = _profile(context[HOUR_PROFILE])
            context[WEEKDAY_PROFILE] = _profile(context[WEEKDAY_PROFILE])
            context[FINGERPRINTS:FINGERPRINTS + 1] = _prompt_ring(context[FINGERPRINTS])
        gaming = values[SLOT_VALUES].get("gaming")
        if gaming is not None and version in (3, 4):
            values[SLOT_VALUES]["gaming"] = _without(gaming, GAMING_V4_UNREAD)
        state = UserState.from_fields(values)
        with_gaming_levels(state)
        return state
    except (msgspec.DecodeError, LookupError, TypeError, AttributeError) as error:
        raise ValueError(f"user state is not a stored user state ({error!r})") from None


def with_gaming_levels(state: UserState) -> None:
    """A state stored before version 8, with its gaming slot's conversation levels (fields
    added last): none learned yet, and unknown for its run's conversations, one each."""
    gaming = state.slots.get("gaming")
    if isinstance(gaming, list) and len(gaming) == GAMING_V7_FIELDS:
        run = gaming[GAMING_RUN]
        gaming += [{}, [NO_LEVEL] * len(run), [0] * len(run), [], 0, False]


def _team_state_record(raw: bytes) -> TeamState:
    """A team state of schema version 2 or 3, as today's record."""
    try:
        values = records.body(raw)
        if records.stored_version(raw) == 2:
            values = _without(values, TEAM_V2_UNREAD)
        return TeamState.from_fields(_without(values, TEAM_V3_UNREAD))
    except (msgspec.DecodeError, LookupError, TypeError) as error:
        raise ValueError(f"team state is not a stored team state ({error!r})") from None


def _without(values: list[Any], unread: tuple[int, ...]) -> list[Any]:
    """A stored record's fields but those at the ``unread`` positions."""
    return [value for place, value in enumerate(values) if place not in unread]


def _profile(shares: list[float]) -> list[int]:
    """Shares rounded to 4 decimals, in ten-thousandths (exactly: see PROFILE_SCALE)."""
    return [round(share * PROFILE_SCALE) for share in shares]


def _prompt_ring(entries: list[int]) -> tuple[bytes, int]:
    """A ring of ``digest << 1 | repeated`` as the context's digests and repeats."""
    digests = b"".join((entry >> 1).to_bytes(PROMPT_DIGEST_BYTES, "big") for entry in entries)
    return digests, sum((entry & 1) << place for place, entry in enumerate(entries))


def _document(raw: bytes, what: str, versions: tuple[int, ...]) -> dict[str, Any]:
    document = json.loads(raw)
    if not isinstance(document, dict) or document.get("v") not in versions:
        version = document.get("v") if isinstance(document, dict) else None
        raise ValueError(f"{what} in JSON with codec version {version!r}: this worker reads "
                         f"JSON only as release ae4055c wrote it (version {versions[-1]})")
    return document


def _stats(values: list[float]) -> EWStats:
    count, mean, var = values
    return EWStats(int(count), mean, var)


def _incident(values: list[Any]) -> Incident:
    alert_id, until, *severity = values
    return Incident(alert_id, until, *severity)


def _context(values: list[Any]) -> UsageContext:
    (last_time, hour, slices, window, day, offset, profile_days, hour_profile,
     weekday_profile, fingerprints, sessions, daily_level, hourly_requests) = values
    if sessions and not isinstance(sessions[0], list):  # one session, before several
        sessions = [[*sessions[:4], 0, -1.0]]
    ring, repeats = _prompt_ring(fingerprints)
    context = UsageContext(
        last_time=last_time, hour=_bucket(hour), window=_bucket(window),
        day=Day(*(int(n) for n in day)), utc_offset_hours=offset, profile_days=profile_days,
        hour_profile=records.Ints(_profile(hour_profile)),
        weekday_profile=records.Ints(_profile(weekday_profile)),
        fingerprints=ring, repeats=repeats,
        sessions=[Session(int(digest), int(requests), int(first), int(most), int(last),
                          float(time))
                  for digest, requests, first, most, last, time in sessions],
        daily_level=_stats(daily_level), hourly_requests=_stats(hourly_requests),
    )
    if len(slices) == 13:  # else stored before the slices: they start afresh
        context.last_slices = Slices(slices[0], [int(n) for n in slices[1:7]],
                                     [int(n) for n in slices[7:13]])
    return context


def _bucket(values: list[float]) -> Bucket:
    start, tokens, requests = values
    return Bucket(start, int(tokens), int(requests))


def _seen(values: list[Any]) -> SeenIds:
    """Codec 2's ids: 2-byte fingerprints by day."""
    narrow = {int(values[i]): bytearray(base64.b64decode(values[i + 1]))
              for i in range(1, len(values), 2)}
    return SeenIds(newest=values[0], narrow=narrow)


def _narrow(seen: list[Any]) -> list[Any]:
    """A stored ``SeenIds`` of version 3 to 5 (2-byte fingerprints), as today's: those
    days kept apart, as ``narrow``."""
    newest, days = seen[:2]
    return [newest, {}, days]


def _seen_codec1(encoded: str, newest: float) -> SeenIds:
    """Codec 1's last ids (6-byte digests, no times): kept as seen on the newest day, by
    their first FINGERPRINT_BYTES."""
    digests = base64.b64decode(encoded)
    fingerprints = bytearray().join(digests[i : i + FINGERPRINT_BYTES]
                                    for i in range(0, len(digests), DIGEST_BYTES))
    if newest < 0 or not fingerprints:
        return SeenIds()
    return SeenIds(newest=newest, days={int(newest // DAY_SECONDS): fingerprints})


def _spike(v: list[float]) -> SpikeSlot:
    # Stored before hour sizes and repeats were kept (6 numbers): they start afresh.
    return SpikeSlot(_stats(v[0:3]), _stats(v[3:6]), _stats(v[6:9] or [0, 0.0, 0.0]),
                     _stats(v[9:12] or [0, 0.0, 0.0]))


def _drift(v: list[float]) -> DriftSlot:
    count, mean, sum_increase, _, min_increase, _ = v[6:12]  # the sums for falls: unused
    test = PageHinkley(count, mean, sum_increase,
                       math.inf if min_increase >= UNSET else min_increase)
    return DriftSlot(_stats(v[0:3]), _stats(v[3:6]), test)


def _gaming(v: list[float]) -> GamingSlot:
    # 12 to 16 numbers: the fresh input's levels (0:3, 6:9) and the run counters after
    # them (12:) are no longer read.
    return GamingSlot(usual_output=_stats(v[3:6]), recent_output=_stats(v[9:12]))


def _scripted_loop(v: list[float]) -> LoopSlot:
    slot = LoopSlot(_stats(v[0:3]), _stats(v[3:6]), int(v[6]), v[7])
    if len(v) > 8:
        slot.last_time, slot.decades, slot.on_repeats = v[8], v[9], bool(v[10])
        slot.repeats = int(v[11])
    else:  # stored before the run kept its own clock: the run starts afresh
        slot.restart(v[7])
    return slot


def _runaway_agent(v: list[float]) -> RunSlot:
    start, off_start, off, agent, requests, surprise, growth = v
    return RunSlot(start, off_start, int(off), int(agent), int(requests), surprise, growth)


def _new_pattern(v: list[Any]) -> PatternSlot:
    known, start, requests, *units = v  # stored before units: 3 values
    return PatternSlot({int(digest, 16): Sighting(first, last)
                        for digest, (first, last) in known.items()},
                       float(start), int(requests), int(units[0] if units else requests))


def _creep(v: list[float]) -> CreepSlot:
    def track(t: list[float]) -> CreepTrack:
        ramp, ramp_days, ramp_squares, cusum, jumps, recent = t[8:14]
        return CreepTrack(Days(*t[0:4]), Days(*t[4:8]), ramp, ramp_days, ramp_squares,
                          cusum, int(jumps), recent)
    if len(v) == 16:
        # Stored before output per request was an aspect: its hourly track goes on,
        # the new aspect starts now (it counts from the next day on).
        return CreepSlot([track(v[0:14]), CreepTrack()])
    if len(v) != 30:
        # Stored by the CUSUM-only creep of before (9 numbers): afresh rather than
        # misread; its reference is relearned within a week.
        return CreepSlot()
    return CreepSlot([track(v[0:14]), track(v[14:28])], int(v[28]), v[29])


SLOTS: dict[str, Callable[[list[Any]], Slot]] = {
    "spike": _spike, "drift": _drift, "rate": lambda v: RateSlot(_stats(v)),
    "gaming": _gaming, "scripted_loop": _scripted_loop, "runaway_agent": _runaway_agent,
    "new_pattern": _new_pattern, "creep": _creep,
}
"""How ae4055c read each of its detectors' slots."""


def _slot(name: str, values: list[Any]) -> Slot | None:
    """A detector's slot from ae4055c's list; None (afresh) for a detector it did not have."""
    read = SLOTS.get(name)
    return None if read is None else read(values)
