"""Renderings: Mermaid/DOT styling, and the HTML report checked in headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowtrace import map as ftmap

from ._map_system import system_spans

DECLARED = Path(__file__).parent / "map" / "shop.toml"


def _plaintext_card_map() -> ftmap.ObservedMap:
    """The test system plus one flow of card data in plaintext, and hostile names."""
    observed = ftmap.build(spans=system_spans())
    observed.add(
        "c" * 32,
        "d" * 16,
        "PRODUCER",
        {
            "messaging.system": "rabbitmq",
            "messaging.destination.name": "<script>x",
            "flowtrace.data.categories": ["pci"],
            "flowtrace.region": "eu",
        },
        {"service.name": "orders-api"},
        5,
    )
    return observed


def test_plaintext_restricted_flows_are_red_sensitive_flows_thick() -> None:
    observed = _plaintext_card_map()
    mermaid = ftmap.render(observed, "mermaid")
    flows = sorted(observed.flows)
    red = flows.index(("orders-api", "rabbitmq/<script>x"))
    assert f"linkStyle {red} stroke:#d00" in mermaid
    assert mermaid.count("==>") == 5  # every flow here carried a category
    dot = ftmap.render(observed, "dot")
    assert '"orders-api" -> "rabbitmq/<script>x" [label="pci", penwidth=2.5, color="#d00"]' in dot
    assert "subgraph cluster_" in dot


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts = 0
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        self.urls += [v or "" for k, v in attrs if k in ("src", "href")]


def test_html_is_self_contained_and_escapes_input() -> None:
    """No script, no external URL; a hostile queue name is text, not markup."""
    page = ftmap.render(_plaintext_card_map(), "html")
    parser = _Text()
    parser.feed(page)
    assert parser.scripts == 0
    assert parser.urls == []
    assert "&lt;script&gt;x" in page


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("FLOWTRACE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{message} and FLOWTRACE_REQUIRE_SERVICES=1")
        pytest.skip(message)
    return path


def dump_dom(html_file: Path, tmp_path: Path) -> str:
    """The DOM as headless Chromium built it (offline: no network, no profile)."""
    result = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            html_file.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


class _Dom(HTMLParser):
    """Collects the elements the report promises (by class / id / data attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self.flows: list[dict[str, str | None]] = []
        self.nodes: list[str | None] = []
        self.regions: list[str | None] = []
        self.findings: list[str | None] = []
        self.ids: set[str] = set()
        self._in_verdict = False
        self.verdict = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        cls = a.get("class") or ""
        if tag == "g" and cls == "flow":
            self.flows.append(a)
        if tag == "g" and cls == "node":
            self.nodes.append(a.get("data-node"))
        if tag == "g" and cls == "region":
            self.regions.append(a.get("data-region"))
        if tag == "tr" and cls == "finding":
            self.findings.append(a.get("data-rule"))
        self._in_verdict = a.get("id") == "verdict"

    def handle_data(self, data: str) -> None:
        if self._in_verdict:
            self.verdict += data
            self._in_verdict = False


def test_chromium_renders_map_findings_and_evidence(tmp_path: Path) -> None:
    """Headless Chromium parses the report: the SVG map with its region box, the red
    flow, the failing finding and its evidence trace id are in the DOM."""
    observed = _plaintext_card_map()
    declared = ftmap.load_declared(DECLARED)
    declared.apply_regions(observed)
    report = ftmap.check(observed, declared)
    page = tmp_path / "report.html"
    page.write_text(ftmap.render(observed, "html", findings=report.findings, declared=declared))
    dom = dump_dom(page, tmp_path)
    parsed = _Dom()
    parsed.feed(dom)
    assert {"map-svg", "findings", "flows", "residency", "verdict"} <= parsed.ids
    assert sorted(parsed.nodes) == sorted(observed.nodes)
    assert "eu" in parsed.regions
    red = [f for f in parsed.flows if f.get("data-style") == "plaintext-restricted"]
    assert [(f["data-from"], f["data-to"]) for f in red] == [("orders-api", "rabbitmq/<script>x")]
    assert "undeclared-flow" in parsed.findings
    assert parsed.verdict.endswith("failing finding(s)")
    assert "trace " + "c" * 32 + " span " + "d" * 16 in dom


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=4))
def test_no_attribute_value_becomes_markup(names: list[str]) -> None:
    """Whatever services, queues and tenants are called, the report has no script, no
    URL, and every name is in the page as text."""
    import html

    observed = ftmap.ObservedMap()
    for index, name in enumerate(names):
        observed.add(
            f"{index:032x}",
            f"{index:016x}",
            "PRODUCER",
            {
                "messaging.system": name,
                "messaging.destination.name": name,
                "flowtrace.data.categories": [name],
                "flowtrace.purpose": name,
                "flowtrace.region": name,
            },
            {"service.name": name + "-svc", "flowtrace.service.region": name},
        )
    page = ftmap.render(observed, "html")
    parser = _Text()
    parser.feed(page)
    assert parser.scripts == 0
    assert parser.urls == []
    for name in names:
        assert html.escape(f"{name}-svc") in page
