"""What every detector shares: the observation it reads and the finding it returns.

A detector holds parameters only and is shared by all users; each user's numbers
live in a *slot* of that user's :class:`~detectors.state.UserState`, which the
detector creates, updates and restores from plain numbers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol

from schemas import TokenUsageEvent


@dataclass(frozen=True, slots=True)
class ClosedBucket:
    """A time bucket (an hour, a rate window) the user was active in, now over."""

    start: float
    tokens: int
    requests: int


@dataclass(frozen=True, slots=True)
class Observation:
    """One event and the running totals it belongs to, computed once for all detectors."""

    event: TokenUsageEvent
    time: float
    tokens: int
    hour_tokens: int
    hour_requests: int
    window_requests: int
    closed_hour: ClosedBucket | None
    closed_window: ClosedBucket | None


@dataclass(frozen=True, slots=True)
class Finding:
    """A detector's verdict on one observation; it becomes an alert above the threshold."""

    score: float
    feature: str
    observed: float
    expected: float
    explanation: str
    single_event: bool = False
    """True when the triggering event alone is the evidence (not the recent ones)."""


class Slot(Protocol):
    """A detector's per-user numbers."""

    def to_list(self) -> list[Any]: ...


class Detector(ABC):
    """Parameters of one detector, and the verbs the engine calls."""

    name: str
    kind: str

    @abstractmethod
    def new_slot(self) -> Slot:
        """The numbers of a user this detector has never seen."""

    @abstractmethod
    def restore(self, values: list[Any]) -> Slot:
        """Rebuild a slot from what its ``to_list`` returned."""

    @abstractmethod
    def observe(self, slot: Any, observation: Observation) -> Finding | None:
        """Score the observation against the slot, then learn from it."""
