"""Pseudonyms: every ``user_id`` replaced at ingestion by a keyed HMAC of it.

With a key configured, the worker and ``replay`` replace each event's ``user_id`` by
``pn-`` and the first 32 hex digits (128 bits) of HMAC-SHA256(key, user_id) before
anything else sees it, so alerts, state keys, the changelog, the re-key topic, scores and
dead letters carry the pseudonym, never the id. The same key gives the same pseudonym
in the worker and in ``replay``: a backtest still predicts production alert for alert.

An HMAC cannot be inverted. Whoever holds the key can only test candidates: hash each
id of a list (the staff directory) and see which pseudonym it gives
(``tokenradar reveal``). Without the key, a pseudonym cannot be linked to a person even
by hashing every candidate, unlike a plain hash.

>>> names = Pseudonymiser(b"an example key, 16+ characters")
>>> alias = names.pseudonym("ana@example.com")
>>> alias.startswith(PSEUDONYM_PREFIX), len(alias), alias == names.pseudonym("ana@example.com")
(True, 35, True)
>>> alias == Pseudonymiser(b"another key, 16+ characters").pseudonym("ana@example.com")
False
"""

from __future__ import annotations

import hashlib
import hmac

from tokenradar.schemas.events import TokenUsageEvent

PSEUDONYM_PREFIX = "pn-"
"""Marks a pseudonym, so nobody takes it for a user id (nor one for the other)."""
PSEUDONYM_HEX_DIGITS = 32
"""128 bits of the HMAC: no two of a billion ids collide but once in 10^20."""


class Pseudonymiser:
    """Replaces user ids by their keyed pseudonyms; holds the key, never shows it."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "Pseudonymiser(key=<hidden>)"

    def pseudonym(self, user_id: str) -> str:
        digest = hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:PSEUDONYM_HEX_DIGITS]

    def event(self, event: TokenUsageEvent) -> tuple[TokenUsageEvent, str]:
        """The event under its pseudonym, and its JSON (what is stored and forwarded in
        place of the message: fields outside the schema are dropped with the id)."""
        hidden = event.model_copy(update={"user_id": self.pseudonym(event.user_id)})
        return hidden, hidden.model_dump_json(exclude_defaults=True)
