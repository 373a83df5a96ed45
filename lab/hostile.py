"""Hostile input: messages a broken or malicious producer sends, each with its due fate.

The fuzz run (``bench/fuzz.py``, ``tests/integration/test_hostile_input.py``) sends them
to a real worker and checks every one is scored, dropped as a duplicate or
dead-lettered with the expected ``error_type``, and that a *canary* planted in fields
outside the contract never comes out again (alerts, dead letters, metrics, logs).

Every kind is a recipe: a few ordinary events for many users (so there is something
to score and to alert on), among them what issue 14 lists: non-UTF-8, invalid JSON,
deep nesting, multi-megabyte strings, NaN/Infinity, negative or absurd token counts,
timestamps without offset or years away, duplicate ids, null or binary keys, extra
fields carrying text.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

CANARY = "CANARY-prompt-4b1d9e-do-not-leak"
"""Planted in fields outside the contract (and in their names); must never come out."""
SCORED = "scored"
DUPLICATE = "duplicate"
START = datetime(2026, 11, 2, 9, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class HostileMessage:
    kind: str
    key: bytes | None
    value: bytes
    fate: str
    """``scored``, ``duplicate``, or the dead letter's ``error_type``."""


class HostileProducer:
    """Deterministic hostile messages, from a seed: ``messages(n)`` gives ``n`` of them.

    About half are ordinary events (keyed by their team or user, so the detectors have
    baselines), the rest spread over the hostile kinds. ``huge_every`` puts one message
    of megabytes every that many (0: none), for runs where size is not the point.
    """

    def __init__(self, seed: int = 0, users: int = 40, canary: str = CANARY,
                 huge_every: int = 1000, huge_bytes: int = 3_000_000) -> None:
        self.rng = random.Random(seed)
        self.users = [f"user-{i:04d}" for i in range(users)]
        self.canary = canary
        self.huge_every, self.huge_bytes = huge_every, huge_bytes
        self.at = START
        self.number = 0
        self.sent: list[tuple[bytes | None, bytes]] = []
        """Ordinary events already sent (key, value): what duplicates copy."""

    def messages(self, count: int) -> Iterator[HostileMessage]:
        recipes = [getattr(self, name) for name in sorted(dir(self))
                   if name.startswith("_kind_")]
        for index in range(count):
            if self.huge_every and index % self.huge_every == self.huge_every // 2:
                yield self._huge()
            elif self.rng.random() < 0.5 or not self.sent:
                yield self._ordinary()
            else:
                yield self.rng.choice(recipes)()

    def expected(self, messages: list[HostileMessage]) -> Counter[str]:
        """Messages by due fate."""
        return Counter(message.fate for message in messages)

    # An ordinary event, and the hostile kinds (each a method named _kind_*).

    def _event(self, **changes: object) -> tuple[dict[str, object], bytes]:
        self.number += 1
        self.at += timedelta(seconds=self.rng.uniform(0.5, 3.0))
        user = self.rng.choice(self.users)
        team = None if user.endswith("7") else f"team-{int(user[-4:]) % 9}"
        event: dict[str, object] = {
            "event_id": f"fuzz-{self.number:07d}",
            "timestamp": self.at.isoformat().replace("+00:00", "Z"),
            "user_id": user, "team": team, "model": self.rng.choice(["m-large", "m-small"]),
            "input_tokens": int(1000 * self.rng.lognormvariate(0, 0.5)),
            "output_tokens": int(200 * self.rng.lognormvariate(0, 0.5)),
            "session_id": f"{user}-s{self.number // 50}",
        }
        event.update(changes)
        event = {name: value for name, value in event.items() if value is not None}
        route = str(event.get("team") or event["user_id"])
        return event, route.encode()

    def _ordinary(self) -> HostileMessage:
        event, key = self._event()
        value = json.dumps(event).encode()
        self.sent.append((key, value))
        return HostileMessage("ordinary", key, value, SCORED)

    def _huge(self) -> HostileMessage:
        """Megabytes: a valid event with a huge extra field, a huge team, or binary."""
        event, key = self._event()
        size = self.huge_bytes
        value = self.rng.choice([
            json.dumps({**event, "prompt": (self.canary + " ") * (size // 40)}).encode(),
            json.dumps({**event, "team": "t" * size}).encode(),
            self.rng.randbytes(size),
        ])
        return HostileMessage("huge", key, value, "too_large")

    def _kind_extra_text(self) -> HostileMessage:
        """Valid, with the prompt (and a field named after it) where it should not be."""
        event, key = self._event()
        event |= {"prompt": f"{self.canary}: summarise our Q3 numbers",
                  f"x-{self.canary}": [self.canary, {"nested": self.canary}]}
        value = json.dumps(event).encode()
        self.sent.append((key, value))
        return HostileMessage("extra_text", key, value, SCORED)

    def _kind_spike_with_text(self) -> HostileMessage:
        """Valid and far larger than usual, so that it alerts, with the prompt attached."""
        event, key = self._event(input_tokens=self.rng.choice([400_000, 900_000]))
        event["prompt"] = f"{self.canary}: " + "please read this whole repository " * 20
        value = json.dumps(event).encode()
        self.sent.append((key, value))
        return HostileMessage("spike_with_text", key, value, SCORED)

    def _kind_not_utf8(self) -> HostileMessage:
        event, key = self._event()
        raw = json.dumps({**event, "prompt": self.canary}).encode()
        cut = self.rng.randrange(len(raw))
        return HostileMessage("not_utf8", key, raw[:cut] + b"\xff\xfe" + raw[cut:], "not_utf8")

    def _kind_invalid_json(self) -> HostileMessage:
        event, key = self._event()
        raw = json.dumps({**event, "prompt": self.canary})
        broken = self.rng.choice([raw[:-1], raw.replace('"', "'", 2), raw + "}",
                                  self.canary, "", raw.replace(":", "", 1)])
        return HostileMessage("invalid_json", key, broken.encode(), "not_json")

    def _kind_not_an_object(self) -> HostileMessage:
        value = self.rng.choice([f'["{self.canary}"]', "42", f'"{self.canary}"', "null"])
        return HostileMessage("not_an_object", None, value.encode(), "not_an_object")

    def _kind_deep_nesting(self) -> HostileMessage:
        event, key = self._event()
        depth = self.rng.choice([5_000, 20_000])
        nested = "[" * depth + json.dumps(self.canary) + "]" * depth
        raw = json.dumps(event)[:-1] + f', "deep": {nested}}}'
        return HostileMessage("deep_nesting", key, raw.encode(), "not_json")

    def _kind_nan_infinity(self) -> HostileMessage:
        event, key = self._event()
        field = self.rng.choice(["input_tokens", "output_tokens", "cost_usd"])
        raw = json.dumps({**event, field: "__x__", "prompt": self.canary})
        value = raw.replace('"__x__"', self.rng.choice(["NaN", "Infinity", "-Infinity"]))
        return HostileMessage("nan_infinity", key, value.encode(), "schema")

    def _kind_absurd_tokens(self) -> HostileMessage:
        event, key = self._event()
        value = self.rng.choice(["-5", "1" + "0" * 400, "1000000000000000000", '"12"',
                                 "12.5", "true", '"' + self.canary + '"'])
        raw = json.dumps({**event, "input_tokens": "__x__"}).replace('"__x__"', value)
        return HostileMessage("absurd_tokens", key, raw.encode(), "schema")

    def _kind_timestamp_without_offset(self) -> HostileMessage:
        event, key = self._event()
        event["timestamp"] = self.at.replace(tzinfo=None).isoformat()
        return HostileMessage("no_offset", key, json.dumps(event).encode(), "schema")

    def _kind_years_ahead(self) -> HostileMessage:
        event, key = self._event()
        year = self.rng.choice([datetime.now(UTC).year + 3, 2100, 9999])
        event["timestamp"] = f"{year}-12-31T23:59:59Z"
        return HostileMessage("years_ahead", key, json.dumps(event).encode(), "future")

    def _kind_years_ago(self) -> HostileMessage:
        """Valid, long past: scored (late, for a user with later events already)."""
        event, key = self._event()
        event["timestamp"] = self.rng.choice(["2019-03-01T10:00:00Z", "1970-01-01T00:00:00Z",
                                              "0001-01-01T00:00:00Z"])
        value = json.dumps(event).encode()
        return HostileMessage("years_ago", key, value, SCORED)

    def _kind_duplicate(self) -> HostileMessage:
        """An ordinary event again: the same bytes, or the same id with other content."""
        key, value = self.rng.choice(self.sent[-200:])
        if self.rng.random() < 0.5:
            event = json.loads(value)
            event["input_tokens"] = int(event["input_tokens"]) + 1
            value = json.dumps(event).encode()
        return HostileMessage("duplicate", key, value, DUPLICATE)

    def _kind_unkeyed_or_binary_key(self) -> HostileMessage:
        """Valid, keyed with nothing or with bytes that are not even UTF-8: re-keyed."""
        event, _ = self._event()
        value = json.dumps(event).encode()
        self.sent.append((None, value))
        key = self.rng.choice([None, b"", self.rng.randbytes(16), b"\xff\x00" * 8])
        return HostileMessage("odd_key", key, value, SCORED)

    def _kind_control_characters(self) -> HostileMessage:
        event, key = self._event()
        field = self.rng.choice(["user_id", "team"])
        event[field] = f"{event.get(field) or 'x'}\x1f\x00reorder"
        return HostileMessage("control_chars", key, json.dumps(event).encode(), "schema")

    def _kind_wrong_types(self) -> HostileMessage:
        event, key = self._event()
        field = self.rng.choice(["user_id", "timestamp", "event_id", "model", "team"])
        wrong: list[object] = [12, [self.canary], {"text": self.canary}, True]
        event[field] = self.rng.choice(wrong + ([] if field == "team" else [""]))
        return HostileMessage("wrong_types", key, json.dumps(event).encode(), "schema")

    def _kind_long_names(self) -> HostileMessage:
        event, key = self._event()
        field = self.rng.choice(["user_id", "team", "model", "event_id", "session_id"])
        event[field] = (self.canary * 20)[:self.rng.choice([300, 5_000, 60_000])]
        return HostileMessage("long_names", key, json.dumps(event).encode(), "schema")
