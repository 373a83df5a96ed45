"""Request sizes nobody here chose: a sample of Azure's public LLM inference traces.

``data/azure_llm_2023_sizes.csv`` holds 1,000 (context, generated) token pairs from each
of the two traces of Azure's LLM inference dataset 2023 (``code``: a coding assistant;
``conv``: conversations), every n-th request of each. Source, commit and licence (CC BY
4.0) are in ``data/SOURCE.md``. A randomised organisation may draw its people's request
sizes from one of them: the shape of the trace, scaled to each person's own level.
"""

from __future__ import annotations

import csv
import statistics
from functools import cache
from importlib import resources

TRACES = ("azure-code", "azure-conv")


@cache
def request_sizes(trace: str) -> tuple[tuple[float, float], ...]:
    """(input, output) size pairs of ``trace``, each relative to the trace's median."""
    name = trace.removeprefix("azure-")
    text = resources.files("tokenradar.lab.simulation").joinpath(
        "data/azure_llm_2023_sizes.csv").read_text(encoding="utf-8")
    pairs = [(int(row["context_tokens"]), int(row["generated_tokens"]))
             for row in csv.DictReader(text.splitlines()) if row["trace"] == name]
    if not pairs:
        raise ValueError(f"unknown request-size trace {trace!r}; known: {TRACES}")
    median_in = statistics.median(p[0] for p in pairs)
    median_out = statistics.median(p[1] for p in pairs)
    return tuple((max(1, i) / median_in, max(1, o) / median_out) for i, o in pairs)
