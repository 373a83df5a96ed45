"""The README's "Metrics" section names exactly the metrics the worker exports, each with
its labels: an operator reads it to write queries, so a metric added, renamed or dropped in
streams/metrics.py without the README fails here."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from tokenradar.streams.metrics import WorkerMetrics

README = Path(__file__).parents[3] / "README.md"
# A name as the README writes it, with its labels if it has any: `name{label,label}`.
NAMED = re.compile(r"`(tokenradar_[a-z0-9_]+)(?:\{([a-z_,]+)\})?`")


def metrics_section() -> str:
    text = README.read_text()
    start = text.index("\n## Metrics\n")
    return text[start:text.index("\n## ", start + 1)]


def exported() -> dict[str, tuple[str, ...]]:
    """Each ``tokenradar_*`` metric as a query names it (counters with ``_total``,
    histograms by their base name) and its labels; ``process_*`` is the client library's."""
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.dead_letters.labels("schema")  # the one labelled counter not exported at zero
    names = {}
    for family in metrics.registry.collect():
        if family.name.startswith("tokenradar_"):
            name = family.name + ("_total" if family.type == "counter" else "")
            labels = {label for sample in family.samples for label in sample.labels} - {"le"}
            names[name] = tuple(sorted(labels))
    return names


def documented() -> dict[str, tuple[str, ...]]:
    """Each name the section writes, with the labels it gives it where it gives any."""
    names: dict[str, tuple[str, ...]] = {}
    for name, labels in NAMED.findall(metrics_section()):
        if labels or name not in names:
            names[name] = tuple(sorted(labels.split(","))) if labels else ()
    return names


def test_the_readme_names_every_metric_the_worker_exports_and_no_other() -> None:
    worker, readme = exported(), documented()
    assert len(worker) >= 17, sorted(worker)  # the registry was read
    assert sorted(set(worker) - set(readme)) == [], "exported but not in README 'Metrics'"
    assert sorted(set(readme) - set(worker)) == [], "in README 'Metrics' but not exported"


def test_the_readme_gives_each_metric_its_labels() -> None:
    worker, readme = exported(), documented()
    assert {name: readme[name] for name in worker if name in readme} == worker
