"""A reorder buffer's changelog record at its bound: the file's events, then events with
every name at its longest, held until the bound releases them (issue 14). Run::

    .venv/bin/python bench/buffer_size.py /work/reference/events.jsonl
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from tokenradar.detectors.reorder import ReorderBuffer, held_text
from tokenradar.schemas import TokenUsageEvent, parse_event
from tokenradar.schemas.config import DEFAULT_REORDER_MAX_EVENTS
from tokenradar.schemas.events import MAX_NAME_LENGTH


def at_bound(events: list[TokenUsageEvent], what: str) -> str:
    buffer = ReorderBuffer(window=float("inf"))  # only the bound releases
    for event in events:
        buffer.add(event, held_text(event), "file")
    record = len(buffer.to_bytes())
    return (f"{what}: {len(buffer):,} held, {buffer.held_bytes:,} bytes of JSON, record "
            f"{record:,} bytes, {record / len(buffer):,.0f} per held event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", type=Path)
    args = parser.parse_args()
    count = 2 * DEFAULT_REORDER_MAX_EVENTS
    with open(args.events, "rb") as source:
        typical = [parse_event(line) for line in itertools.islice(source, count)]
    name = "\U0001f600" * MAX_NAME_LENGTH  # 4 bytes a character
    fattest = [event.model_copy(update={
        "event_id": f"{index:0128d}", "user_id": name, "team": name, "model": name,
        "client": name, "session_id": name, "prompt_fingerprint": name})
        for index, event in enumerate(typical)]
    print(at_bound(typical, f"the first {count:,} events of {args.events.name}"))
    print(at_bound(fattest, "the same with every name at its longest"))


if __name__ == "__main__":
    main()
