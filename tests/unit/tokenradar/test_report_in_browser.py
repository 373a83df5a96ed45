"""The backtest report as a real browser reads it (headless Debian ``chromium``): every bar,
alert mark and labelled span has its hover title, no markup shows as text, nothing is
fetched from elsewhere. Fails, never skips, without chromium: ``.ci/run`` installs it."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tokenradar.cli import main
from tokenradar.lab.simulation import SimulationSpec, write_simulation

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


@dataclass
class Node:
    tag: str
    attributes: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: str = ""

    def walk(self) -> list[Node]:
        return [self, *(node for child in self.children for node in child.walk())]

    def title(self) -> str | None:
        """The hover text: a ``<title>`` child's text, as SVG shows it."""
        return next((child.text for child in self.children if child.tag == "title"), None)


class _TreeBuilder(HTMLParser):
    """The serialised DOM back into a tree; text nodes keep their decoded text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.open = [self.root]
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {name: value or "" for name, value in attrs})
        self.open[-1].children.append(node)
        if tag not in VOID:
            self.open.append(node)

    def handle_endtag(self, tag: str) -> None:
        while len(self.open) > 1 and self.open.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.open[-1].text += data
        self.texts.append(data)


def browser_dom(page: Path, profile: Path) -> str:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (apt-get install -y chromium; .ci/run does)"
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True)
    assert "<svg" in result.stdout, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def report_dom(tmp_path_factory: pytest.TempPathFactory) -> _TreeBuilder:
    """A replay report of a simulated organisation, with labels (so with spans), as parsed
    by the browser."""
    tmp = tmp_path_factory.mktemp("report")
    events, labels, page = tmp / "events.jsonl", tmp / "labels.jsonl", tmp / "report.html"
    write_simulation(SimulationSpec(users=12, teams=2, days=10, seed=5, incidents_per_kind=1,
                                    shifted_teams=1), events, labels)
    assert main(["replay", "--input", str(events), "--alerts-out", str(tmp / "alerts.jsonl"),
                 "--report", str(page), "--labels", str(labels)]) == 0
    tree = _TreeBuilder()
    tree.feed(browser_dom(page, tmp / "chromium-profile"))
    return tree


def _marks(tree: _TreeBuilder, css_class: str) -> list[Node]:
    return [node for node in tree.root.walk()
            if css_class in node.attributes.get("class", "").split()]


def test_histogram_bars_have_hover_titles(report_dom: _TreeBuilder) -> None:
    bars = _marks(report_dom, "bar")
    assert bars and all(bar.tag == "rect" for bar in bars)
    for bar in bars:
        assert re.fullmatch(r"[\d,]+ events", bar.title() or ""), bar


def test_alert_marks_have_hover_titles(report_dom: _TreeBuilder) -> None:
    flags, scores = _marks(report_dom, "alert"), _marks(report_dom, "alert-score")
    assert flags and scores
    for mark in flags:
        assert re.match(r"[a-z_]+( \(team\))? [01]\.\d\d at \d{4}-\d\d-\d\d \d\d:\d\d: \S",
                        mark.title() or ""), mark
    for mark in scores:
        assert re.fullmatch(r"[a-z_]+ [01]\.\d\d: \S+", mark.title() or ""), mark


def test_incident_spans_have_hover_titles(report_dom: _TreeBuilder) -> None:
    spans = _marks(report_dom, "span")
    assert spans
    for span in spans:
        assert re.fullmatch(r"(benign )?[a-z_]+ \S+(: (detected after [\d.]+ (min|h|days)"
                            r"|missed))?", span.title() or ""), span


def test_no_markup_shows_as_text(report_dom: _TreeBuilder) -> None:
    shown = [text for text in report_dom.texts if re.search(r"<\w|&lt;|&gt;|&amp;", text)]
    assert shown == []


def test_nothing_is_fetched_from_elsewhere(report_dom: _TreeBuilder) -> None:
    external = [(node.tag, name, value) for node in report_dom.root.walk()
                for name, value in node.attributes.items()
                if name in ("src", "href", "xlink:href", "action", "poster")
                and re.match(r"\s*(https?:)?//", value)]
    assert external == []
    assert not [node for node in report_dom.root.walk() if node.tag in ("script", "link")]
