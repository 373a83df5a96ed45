"""A simulated organisation: realistic token usage with labelled injected anomalies.

Deterministic by seed. Users work in their own time zone on weekdays, differ by
orders of magnitude (log-normal levels), work in sessions of several requests and
switch models now and then. Injected incidents carry a label each, so detectors
can be scored against them (``tokenradar evaluate``).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

DAY = 86_400.0
HOUR = 3_600.0
TIMEZONES = (-8, -5, 0, 1, 2, 5.5, 8, 9)
MODELS = ("claude-sonnet-4-5", "gpt-5", "gemini-2.5-pro", "claude-haiku-4-5")
CLIENTS = ("ide", "chat", "cli")


@dataclass(frozen=True)
class SimulationSpec:
    users: int = 60
    teams: int = 5
    days: int = 14
    seed: int = 7
    start: datetime = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
    spikes: int = 3
    loops: int = 3
    drifts: int = 2
    warmup_days: int = 5
    """No incident starts before this many days of history."""


@dataclass(frozen=True)
class Label:
    """One injected incident: who, what kind, and when (event time)."""

    incident_id: str
    kind: str
    user_id: str
    team: str
    start: str
    end: str


@dataclass
class _User:
    user_id: str
    team: str
    utc_offset: float
    requests_per_hour: float
    log_tokens: float
    model: str
    client: str
    level: float = 1.0
    incidents: list[tuple[str, float, float]] = field(default_factory=list)


def simulate(spec: SimulationSpec) -> tuple[list[dict[str, object]], list[Label]]:
    """All events of the organisation, sorted by time, and the labels of injected incidents."""
    rng = random.Random(spec.seed)
    users = [_new_user(rng, index, spec) for index in range(spec.users)]
    labels = _inject(rng, users, spec)
    events: list[tuple[float, dict[str, object]]] = []
    for user in users:
        events.extend(_user_events(random.Random(f"{spec.seed}/{user.user_id}"), user, spec))
    events.sort(key=lambda pair: (pair[0], pair[1]["event_id"]))
    return [event for _, event in events], labels


def _new_user(rng: random.Random, index: int, spec: SimulationSpec) -> _User:
    return _User(
        user_id=f"user-{index:04d}",
        team=f"team-{index % spec.teams}",
        utc_offset=rng.choice(TIMEZONES),
        # Heavy-tailed: some people legitimately use 100x more than others.
        requests_per_hour=min(40.0, rng.lognormvariate(math.log(3.0), 0.8)),
        log_tokens=rng.gauss(math.log(2500), 0.9),
        model=rng.choice(MODELS),
        client=rng.choice(CLIENTS),
    )


def _inject(rng: random.Random, users: list[_User], spec: SimulationSpec) -> list[Label]:
    chosen = rng.sample(users, min(len(users), spec.spikes + spec.loops + spec.drifts))
    kinds = ["spike"] * spec.spikes + ["rate"] * spec.loops + ["drift"] * spec.drifts
    labels = []
    for number, (user, kind) in enumerate(zip(chosen, kinds, strict=False)):
        day = rng.randrange(spec.warmup_days, spec.days - 1)
        while _is_weekend(spec.start.timestamp() + day * DAY, user.utc_offset):
            day = day + 1 if day + 1 < spec.days - 1 else spec.warmup_days
        local_hour = rng.uniform(10, 15)
        start = spec.start.timestamp() + day * DAY + (local_hour - user.utc_offset) * HOUR
        duration = {"spike": HOUR, "rate": 0.75 * HOUR,
                    "drift": spec.start.timestamp() + spec.days * DAY - start}[kind]
        user.incidents.append((kind, start, start + duration))
        labels.append(Label(f"incident-{number:03d}", kind, user.user_id, user.team,
                            _iso(start), _iso(start + duration)))
    return labels


def _user_events(rng: random.Random, user: _User, spec: SimulationSpec
                 ) -> Iterator[tuple[float, dict[str, object]]]:
    origin = spec.start.timestamp()
    for hour_index in range(spec.days * 24):
        hour = origin + hour_index * HOUR
        if not _working(hour, user.utc_offset):
            continue
        level = 3.0 if any(kind == "drift" and start <= hour for kind, start, _ in
                           user.incidents) else 1.0
        count = _poisson(rng, user.requests_per_hour * level)
        for _ in range(count):
            time = hour + rng.uniform(0, HOUR)
            yield time, _request(rng, user, time, tokens_factor=math.sqrt(level))
    for kind, start, end in user.incidents:
        yield from _incident_events(rng, user, kind, start, end)


def _incident_events(rng: random.Random, user: _User, kind: str, start: float, end: float
                     ) -> Iterator[tuple[float, dict[str, object]]]:
    if kind == "spike":
        for _ in range(max(8, int(user.requests_per_hour * 6))):
            time = rng.uniform(start, end)
            yield time, _request(rng, user, time, tokens_factor=8.0)
    elif kind == "rate":
        time = start
        while time < end:
            yield time, _request(rng, user, time, tokens_factor=0.5, client="cli")
            time += rng.uniform(4.0, 6.0)


def _request(rng: random.Random, user: _User, time: float, tokens_factor: float,
             client: str | None = None) -> dict[str, object]:
    input_tokens = int(rng.lognormvariate(user.log_tokens, 0.5) * tokens_factor)
    output_tokens = int(rng.lognormvariate(user.log_tokens - 1.2, 0.6))
    model = user.model if rng.random() < 0.9 else rng.choice(MODELS)
    event_id = hashlib.blake2b(f"{user.user_id}/{time}/{rng.random()}".encode(),
                               digest_size=12).hexdigest()
    return {
        "event_id": event_id,
        "timestamp": _iso(time),
        "user_id": user.user_id,
        "team": user.team,
        "model": model,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": int(input_tokens * rng.uniform(0, 0.4)),
        "client": client or user.client,
        "session_id": f"{user.user_id}-s{int(time // 1800)}",
        "prompt_fingerprint": hashlib.blake2b(str(rng.random()).encode(),
                                              digest_size=8).hexdigest(),
    }


def _working(time: float, utc_offset: float) -> bool:
    local = datetime.fromtimestamp(time + utc_offset * HOUR, UTC)
    return local.weekday() < 5 and 9 <= local.hour < 18


def _is_weekend(time: float, utc_offset: float) -> bool:
    return datetime.fromtimestamp(time + utc_offset * HOUR, UTC).weekday() >= 5


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method; means here are small (a few requests an hour).
    limit, product, count = math.exp(-mean), rng.random(), 0
    while product > limit:
        product *= rng.random()
        count += 1
    return count


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def write_labels(path: Path, labels: list[Label]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for label in labels:
            out.write(json.dumps(asdict(label)) + "\n")


def write_simulation(spec: SimulationSpec, events_out: Path, labels_out: Path | None) -> int:
    events, labels = simulate(spec)
    with open(events_out, "w", encoding="utf-8") as out:
        for event in events:
            out.write(json.dumps(event) + "\n")
    if labels_out is not None:
        write_labels(labels_out, labels)
    return len(events)
