"""The simulator's public names, where the CLI and the demo import them from.

The simulation itself lives in :mod:`tokenradar.simulation`.
"""

from tokenradar.simulation import (
    BENIGN_KINDS,
    INCIDENT_KINDS,
    Label,
    SimulationSpec,
    build_organisation,
    iter_events,
    simulate,
    write_labels,
    write_simulation,
)

__all__ = [
    "BENIGN_KINDS",
    "INCIDENT_KINDS",
    "Label",
    "SimulationSpec",
    "build_organisation",
    "iter_events",
    "simulate",
    "write_labels",
    "write_simulation",
]
