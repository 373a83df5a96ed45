"""One time-ordered stream out of everyone's requests, made a day at a time.

Every actor draws its requests one day at a time, and no actor's day ``d`` starts before
UTC day ``d - 1`` ends (time zones span less than a day). So once day ``d`` is drawn,
every request before UTC day ``d`` is final and can be handed out: memory holds a couple
of days of requests, not the whole run.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tokenradar.lab.simulation.organisation import Organisation, build_organisation
from tokenradar.lab.simulation.spec import Label, SimulationSpec
from tokenradar.lab.simulation.usage import DAY

if TYPE_CHECKING:
    from tokenradar.progress import ProgressHook

PROGRESS_EVERY_EVENTS = 1000


def iter_events(spec: SimulationSpec, organisation: Organisation | None = None
                ) -> Iterator[dict[str, object]]:
    """The organisation's events in time order (ties by ``event_id``), lazily."""
    organisation = organisation or build_organisation(spec)
    origin_ms, end_ms = round(spec.origin * 1000), round(spec.end * 1000)
    duplicates = random.Random(f"{spec.seed}/duplicates")
    pending: list[tuple[int, str, int, dict[str, object]]] = []
    order = itertools.count()

    def ready(before_ms: float) -> Iterator[dict[str, object]]:
        while pending and pending[0][0] < before_ms:
            event = heapq.heappop(pending)[3]
            yield event
            if spec.duplicate_share and duplicates.random() < spec.duplicate_share:
                yield dict(event)  # a producer redelivering the same request

    for day in range(-1, spec.days + 1):
        for actor in organisation.actors:
            for ms, event in actor.events_for_day(day):
                if origin_ms <= ms < end_ms:
                    heapq.heappush(pending, (ms, str(event["event_id"]), next(order), event))
        yield from ready(origin_ms + day * DAY * 1000)
    yield from ready(float("inf"))


def simulate(spec: SimulationSpec) -> tuple[list[dict[str, object]], list[Label]]:
    """All events of the organisation, sorted by time, and the labels.

    >>> events, labels = simulate(SimulationSpec(users=6, teams=2, days=9, seed=1))
    >>> events == sorted(events, key=lambda e: (e["timestamp"], e["event_id"]))
    True
    """
    organisation = build_organisation(spec)
    return list(iter_events(spec, organisation)), organisation.labels


def write_labels(path: Path, labels: list[Label]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for label in labels:
            out.write(json.dumps(label.to_json()) + "\n")


def reporting_days(spec: SimulationSpec, events: Iterable[dict[str, object]],
                   progress: ProgressHook) -> Iterator[dict[str, object]]:
    """``events`` unchanged, telling ``progress`` now and then how many days are made."""
    for count, event in enumerate(events, start=1):
        if count % PROGRESS_EVERY_EVENTS == 0:
            made = datetime.fromisoformat(str(event["timestamp"])).timestamp() - spec.origin
            progress(made / DAY, f"{count:,} events")
        yield event


def write_simulation(spec: SimulationSpec, events_out: Path, labels_out: Path | None,
                     progress: ProgressHook | None = None) -> int:
    """Write events (JSON lines) as they are made, then labels; return the event count.

    ``progress`` hears how many of the ``spec.days`` days are made so far.
    """
    organisation = build_organisation(spec)
    count = 0
    events = iter_events(spec, organisation)
    if progress is not None:
        events = reporting_days(spec, events, progress)
    with open(events_out, "w", encoding="utf-8") as out:
        for event in events:
            out.write(json.dumps(event) + "\n")
            count += 1
    if labels_out is not None:
        write_labels(labels_out, organisation.labels)
    return count


def with_flood(events: list[dict[str, object]], count: int,
               seed: int) -> list[dict[str, object]]:
    """``events`` and ``count`` copies of a team member's request within one minute of
    event time, a day before the last event, each up to a second out of order: what a
    busy team's reorder buffer must survive. Sorted by time, to the second."""
    member = next(event for event in events if event.get("team"))
    start = datetime.fromisoformat(str(events[-1]["timestamp"])).timestamp() - DAY
    rng = random.Random(seed)
    flood = [{**member, "event_id": f"flood-{number}",
              "timestamp": datetime.fromtimestamp(start + number * 60 / count
                                                  + rng.uniform(0, 1), UTC).isoformat()}
             for number in range(count)]
    return sorted(events + flood, key=lambda event: str(event["timestamp"])[:19])
