"""A simulated organisation: realistic token usage with labelled injected anomalies.

Deterministic by seed. People work in their own time zones on weekdays, differ by orders
of magnitude, work in sessions, switch models, take vacations, join mid-run; a team or
two is told to adopt AI; service accounts run nightly. Injected incidents (gaming,
scripted loops, runaway agents, new patterns, creep, spikes) each carry a :class:`Label`,
so detectors can be scored against them (``tokenradar evaluate``).
"""

from tokenradar.lab.simulation.knobs import IncidentRanges, OrganisationKnobs
from tokenradar.lab.simulation.organisation import Organisation, build_organisation
from tokenradar.lab.simulation.randomised import random_organisation
from tokenradar.lab.simulation.spec import BENIGN_KINDS, INCIDENT_KINDS, Label, SimulationSpec
from tokenradar.lab.simulation.timeline import (
    iter_events,
    reporting_days,
    simulate,
    with_flood,
    write_labels,
    write_simulation,
)

__all__ = [
    "BENIGN_KINDS",
    "INCIDENT_KINDS",
    "IncidentRanges",
    "Label",
    "Organisation",
    "OrganisationKnobs",
    "SimulationSpec",
    "build_organisation",
    "iter_events",
    "random_organisation",
    "reporting_days",
    "simulate",
    "with_flood",
    "write_labels",
    "write_simulation",
]
