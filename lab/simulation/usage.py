"""One request's usage event: ids, timestamps and prices, the same for every actor."""

from __future__ import annotations

import hashlib
import time

DAY = 86_400.0
HOUR = 3_600.0

PRICES = {  # USD per million tokens: input, output (list prices, late 2025)
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-opus-4-1": (15.00, 75.00),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
    # Never used by anyone in the organisation: seen only with stolen credentials.
    "gpt-4.1-mini": (0.40, 1.60),
    "o3": (2.00, 8.00),
    "llama-3.1-70b": (0.90, 0.90),
    "mistral-large": (2.00, 6.00),
}
EVERYDAY_MODELS = ("claude-sonnet-4-5", "gpt-5", "gemini-2.5-pro", "claude-haiku-4-5",
                   "gpt-5-mini", "gemini-2.5-flash", "claude-opus-4-1")
EVERYDAY_WEIGHTS = (30, 22, 14, 10, 8, 6, 3)
UNUSUAL_MODELS = ("gpt-4.1-mini", "o3", "llama-3.1-70b", "mistral-large")
UNUSUAL_CLIENTS = ("api", "sdk")
CACHE_READ_PRICE = 0.1
"""Cached prompt tokens cost this share of the input price."""


def iso_ms(ms: int) -> str:
    """RFC 3339 UTC with milliseconds and ``Z``, from epoch milliseconds."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def iso(epoch: float) -> str:
    return iso_ms(round(epoch * 1000))


def cost_usd(model: str, input_tokens: int, output_tokens: int, cache_read_tokens: int) -> float:
    price_in, price_out = PRICES[model]
    fresh = input_tokens - cache_read_tokens
    dollars = (fresh * price_in + cache_read_tokens * price_in * CACHE_READ_PRICE
               + output_tokens * price_out) / 1e6
    return round(dollars, 6)


class RequestLog:
    """Makes the usage events of one actor (a person, a service account, an incident).

    Event and session ids are hashes of the seed, the actor and a counter: unique,
    deterministic, and telling nothing about which actor (or incident) made them.
    """

    def __init__(self, seed: int, actor: str, user_id: str, team: str) -> None:
        self.seed = seed
        self.actor = actor
        self.user_id = user_id
        self.team = team
        self._events = 0
        self._sessions = 0

    def _hash(self, what: str, number: int) -> str:
        return hashlib.blake2b(f"{self.seed}/{self.actor}/{what}/{number}".encode(),
                               digest_size=10).hexdigest()

    def new_session(self) -> str:
        self._sessions += 1
        return "s-" + self._hash("session", self._sessions)

    def request(self, at: float, model: str, input_tokens: int, output_tokens: int,
                cache_read_tokens: int, client: str, session_id: str | None,
                fingerprint: str | None) -> tuple[int, dict[str, object]]:
        """``(epoch ms, event)`` for one request made at ``at`` (epoch seconds)."""
        self._events += 1
        ms = round(at * 1000)
        input_tokens = max(1, input_tokens)
        output_tokens = max(0, output_tokens)
        cache_read_tokens = min(max(0, cache_read_tokens), input_tokens)
        event: dict[str, object] = {
            "event_id": "req-" + self._hash("event", self._events),
            "timestamp": iso_ms(ms),
            "user_id": self.user_id,
            "team": self.team,
            "model": model,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_read_tokens": cache_read_tokens,
            "cost_usd": cost_usd(model, input_tokens, output_tokens, cache_read_tokens),
            "client": client,
        }
        if session_id is not None:
            event["session_id"] = session_id
        if fingerprint is not None:
            event["prompt_fingerprint"] = fingerprint
        return ms, event
