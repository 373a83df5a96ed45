"""The detectors of the declared kinds, built from a configuration.

A kind is declared once, in :mod:`tokenradar.schemas.kinds` (or by a plugin calling
:func:`~tokenradar.schemas.kinds.declare`); its declaration names its detector by
import path, which is imported here, so ``schemas`` never imports ``detectors``.

Examples
--------
>>> from tokenradar.schemas import DetectorConfig
>>> built = build_detectors(DetectorConfig())
>>> [detector.name for detector in built.users][:3], [d.name for d in built.teams]
(['spike', 'drift', 'rate'], ['population_shift'])
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Any

from tokenradar.detectors.base import Declared, Detector, TeamDetector
from tokenradar.schemas.config import DetectorConfig
from tokenradar.schemas.kinds import KindDeclaration, detector_kinds


@dataclass(frozen=True, slots=True)
class Detectors:
    """The detectors in force for one configuration."""

    users: list[Detector]
    """Enabled detectors of a user's usage, in the order declared."""
    teams: list[TeamDetector]
    """Detectors of a team's movement; built even when disabled, since members' detectors
    read the movement they learn (their alerts are off then)."""


def build_detectors(config: DetectorConfig) -> Detectors:
    users: list[Detector] = []
    teams: list[TeamDetector] = []
    for kind in detector_kinds():
        detector = detector_class(kind)(config.section(kind))
        if isinstance(detector, TeamDetector):
            teams.append(detector)
        elif isinstance(detector, Detector) and detector.config.enabled:
            users.append(detector)
    return Detectors(users, teams)


@cache
def detector_class(kind: KindDeclaration[Any]) -> type[Declared]:
    """The detector class a declaration names, checked to be the right kind of detector."""
    module_name, _, class_name = (kind.detector or "").partition(":")
    found = getattr(importlib.import_module(module_name), class_name, None)
    wanted = TeamDetector if kind.scope == "team" else Detector
    if not (isinstance(found, type) and issubclass(found, wanted)):
        raise TypeError(f"kind {kind.name!r}: {kind.detector!r} is not a {wanted.__name__}")
    if found.declaration is not kind:
        raise TypeError(f"kind {kind.name!r}: {kind.detector!r} declares "
                        f"{found.declaration.name!r}, not this kind")
    return found
