"""The kinds of anomaly, each declared once: the one place that says what a detector is.

A :class:`KindDeclaration` names a kind (which is also its detector's name and its
configuration section's key), its section's model, where its detector is, its rank
among behaviours and whether it judges a user or a team. Everything that lists kinds
reads them from here: the :data:`~tokenradar.schemas.alerts.AnomalyKind` enum, the
configuration (:class:`~tokenradar.schemas.config.DetectorConfig`), the engine's
detectors, the evaluation, the report and the simulator.

This module sits in ``schemas`` because the configuration and the enum need it, and
``schemas`` never imports ``detectors``: a declaration names its detector by import
path (``"package.module:Class"``, as an entry point would), and the engine, in
``detectors``, imports it (:mod:`tokenradar.detectors.registry`). Adding a detector is
its module, its section (:mod:`tokenradar.schemas.sections`) and one line below; a
plugin's one module holds both and calls :func:`declare`. See CONTRIBUTING.md.

Examples
--------
>>> declared("spike").config.__name__, declared("spike").detector
('SpikeConfig', 'tokenradar.detectors.spike:SpikeDetector')
>>> [kind.name for kind in declared_kinds() if kind.behaviour_rank]
['gaming', 'scripted_loop', 'runaway_agent', 'new_pattern']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from tokenradar.schemas.sections import (
    CreepConfig,
    DetectorSection,
    DriftConfig,
    GamingConfig,
    NewPatternConfig,
    PopulationShiftConfig,
    RateConfig,
    RunawayAgentConfig,
    ScriptedLoopConfig,
    SpikeConfig,
)

SectionT = TypeVar("SectionT", bound=DetectorSection)

RESERVED_NAMES = frozenset({"scoring", "severity", "calibration", "noisy_identity",
                            "allowlist", "calendar", "prices", "budgets", "teams"})
"""Keys of the configuration that are not detector sections; no kind may take them
(``noisy_identity`` is a kind, but the engine raises it, with its own section)."""


@dataclass(frozen=True, slots=True)
class KindDeclaration(Generic[SectionT]):
    """One kind of anomaly, and the detector that finds it."""

    name: str
    """The kind alerts carry, its detector's name, and its configuration section's key."""
    summary: str
    """What it catches, in one sentence."""
    config: type[SectionT] | None = None
    """Its configuration section's model; None for a kind the engine raises itself."""
    detector: str | None = None
    """Its detector, ``"package.module:Class"``, called with the section's values."""
    behaviour_rank: int = 0
    """0: a signal (a spike, a rate...). Above 0: a behaviour, the more specific the
    higher. While a behaviour's incident is open, or it is building up, it holds back
    the alerts of lower ranks it explains (:mod:`tokenradar.detectors.precedence`)."""
    scope: Literal["user", "team"] = "user"
    """Whom it judges: a user (alerts keyed by ``user_id``) or a team (``team:<team>``)."""

    @property
    def section(self) -> type[SectionT]:
        """Its configuration section's model (a kind the engine raises has none)."""
        if self.config is None:
            raise TypeError(f"kind {self.name!r} has no configuration section")
        return self.config


_DECLARED: dict[str, KindDeclaration[Any]] = {}


def declare(declaration: KindDeclaration[SectionT]) -> KindDeclaration[SectionT]:
    """Add a kind to those tokenradar knows; returns it, to be kept under a name.

    Declaring the same declaration twice is harmless (a module imported again); two
    different declarations of one name are an error.
    """
    name = declaration.name
    known = _DECLARED.get(name)
    if known is not None and known != declaration:
        raise ValueError(f"kind {name!r} is already declared, differently: {known}")
    if name in RESERVED_NAMES and declaration.config is not None:
        raise ValueError(f"kind {name!r} would take the configuration's own key {name!r}")
    if (declaration.config is None) != (declaration.detector is None):
        raise ValueError(f"kind {name!r}: a detector needs a configuration section, and "
                         "a section a detector")
    _DECLARED[name] = declaration
    return declaration


def declared_kinds() -> tuple[KindDeclaration[Any], ...]:
    """Every declared kind, in the order declared (the order detectors run in)."""
    return tuple(_DECLARED.values())


def declared(name: str) -> KindDeclaration[Any]:
    """The declaration of kind ``name``; KeyError names the known ones."""
    try:
        return _DECLARED[name]
    except KeyError:
        raise KeyError(f"unknown kind {name!r}; known: {', '.join(_DECLARED)}") from None


def detector_kinds() -> tuple[KindDeclaration[Any], ...]:
    """The declared kinds that have a detector and a configuration section."""
    return tuple(kind for kind in _DECLARED.values() if kind.config is not None)


def _builtin(name: str, summary: str, config: type[SectionT], detector: str, *,
             behaviour_rank: int = 0, scope: Literal["user", "team"] = "user"
             ) -> KindDeclaration[SectionT]:
    return declare(KindDeclaration(name, summary, config,
                                   f"tokenradar.detectors.{detector}", behaviour_rank, scope))


SPIKE = _builtin("spike", "One request or one hour far above the user's baseline.",
                 SpikeConfig, "spike:SpikeDetector")
DRIFT = _builtin("drift", "A sustained change of the user's level of usage.",
                 DriftConfig, "drift:DriftDetector")
RATE = _builtin("rate", "Requests arrive far faster than this user's norm.",
                RateConfig, "rate:RateDetector")
GAMING = _builtin("gaming", "Tokenmaxxing: prompts padded with filler, input far above "
                  "norm, output unchanged.", GamingConfig, "gaming:GamingDetector",
                  behaviour_rank=1)
SCRIPTED_LOOP = _builtin("scripted_loop", "Near-identical requests at machine-regular "
                         "intervals.", ScriptedLoopConfig,
                         "scripted_loop:ScriptedLoopDetector", behaviour_rank=3)
RUNAWAY_AGENT = _builtin("runaway_agent", "Agent traffic sustained through the user's "
                         "nights or weekends.", RunawayAgentConfig,
                         "runaway_agent:RunawayAgentDetector", behaviour_rank=3)
NEW_PATTERN = _builtin("new_pattern", "A burst on a model or client the user never used, "
                       "at an unusual hour.", NewPatternConfig,
                       "new_pattern:NewPatternDetector", behaviour_rank=2)
CREEP = _builtin("creep", "The user's daily level rising steadily, day after day.",
                 CreepConfig, "creep:CreepDetector")
POPULATION_SHIFT = _builtin("population_shift", "A whole team moving together; reported "
                            "once, for ``team:<team>``.", PopulationShiftConfig,
                            "population_shift:PopulationShiftDetector", scope="team")
NOISY_IDENTITY: KindDeclaration[Any] = declare(KindDeclaration(
    "noisy_identity", "An identity that raised more alerts than a person plausibly causes: "
    "one summary, then quiet for the window (a machine account, or a detector that "
    "misreads them)."))
BUDGET_BURN: KindDeclaration[Any] = declare(KindDeclaration(
    "budget_burn", "A team's (or user's) month-to-date spend plus the forecast at the "
    "current pace reaches its monthly budget ([budgets]); re-published under its id as the "
    "projected date moves."))
