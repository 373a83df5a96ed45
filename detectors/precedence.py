"""Which alert wins, and which is held back: the one place that decides it.

Kinds that name a behaviour rank above the signals they set off (their declaration's
``behaviour_rank``; 0 is a signal). An agent left running is also a new client, a
burst on a stolen key also looks padded, and each of them sets off spikes and rates:

- **folding**: while a user has a behaviour's incident open, an alert of another kind
  ranked no higher (a signal, or a less or equally specific behaviour) is folded into
  it, and not published;
- **forming**: while a behaviour is building up (its detector's ``forming``), the
  alerts of kinds ranked below it wait, so its own alert comes first.

A more specific behaviour still alerts during a less specific one's incident.

Examples
--------
>>> from tokenradar.detectors.state import Incident
>>> open_incidents = {"runaway_agent": Incident("a1", until=100.0)}
>>> folded("spike", open_incidents, time=50.0), folded("spike", open_incidents, time=150.0)
(True, False)
>>> folded("scripted_loop", open_incidents, time=50.0)  # as specific: folded
True
>>> held_back("gaming", forming=rank("new_pattern")), held_back("new_pattern", forming=2)
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tokenradar.detectors.base import Detector, Observation
from tokenradar.detectors.state import Incident
from tokenradar.schemas.kinds import declared_kinds


def rank(kind: str) -> int:
    """A kind's rank among behaviours; 0 for a signal or a kind not declared."""
    return next((k.behaviour_rank for k in declared_kinds() if k.name == kind), 0)


def forming_rank(detectors: Iterable[Detector], slots: Mapping[str, Any],
                 observation: Observation) -> int:
    """The highest rank of the behaviours building up for this user now (0: none)."""
    return max((rank(detector.kind) for detector in detectors
                if detector.forming(slots[detector.name], observation)), default=0)


def held_back(kind: str, forming: int) -> bool:
    """Does an alert of ``kind`` wait for a more specific behaviour building up?"""
    return rank(kind) < forming


def folded(kind: str, incidents: Mapping[str, Incident], time: float) -> bool:
    """Is an alert of ``kind`` explained by another open behaviour's incident?"""
    own = max(rank(kind), 1)
    return any(other != kind and rank(other) >= own and time < incident.until
               for other, incident in incidents.items())
