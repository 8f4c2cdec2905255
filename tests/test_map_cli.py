"""`flowtrace map check` and `flowtrace map render` over span files."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml

from flowtrace.cli import main
from flowtrace.otel import JsonLinesSpanExporter

from ._map_system import system_spans

DECLARED = Path(__file__).parent / "map" / "shop.toml"


@pytest.fixture
def spans_file(tmp_path: Path) -> Path:
    path = tmp_path / "spans.jsonl"
    exporter = JsonLinesSpanExporter(path)
    exporter.export(system_spans())
    exporter.shutdown()
    return path


def test_check_passes_on_a_matching_declaration(
    spans_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["map", "check", "--declared", str(DECLARED), "--from", str(spans_file)]) == 0
    assert "4 flows: OK" in capsys.readouterr().out


def test_check_fails_naming_the_flow_and_trace(
    spans_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 1; each finding with its evidence; the baseline then accepts it."""
    doc = tomllib.loads(DECLARED.read_text())
    del doc["flows"][0]
    declared = tmp_path / "map.yaml"
    declared.write_text(yaml.safe_dump(doc))
    publish = next(
        json.loads(line)
        for line in spans_file.read_text().splitlines()
        if json.loads(line)["name"] == "orders publish"
    )
    args = ["map", "check", "--declared", str(declared), "--from", str(spans_file)]
    baseline = tmp_path / "baseline.json"
    assert main([*args, "--write-baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "error: undeclared-flow [orders-api -> rabbitmq/orders]" in out
    assert f"trace {publish['trace_id']} span {publish['span_id']}" in out
    assert main([*args, "--baseline", str(baseline), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [f["baselined"] for f in report["findings"] if f["severity"] == "error"] == [True]


def test_unreadable_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["map", "check", "--declared", str(tmp_path / "x.toml"), "--from", "x"]) == 2
    assert "cannot be read" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["mermaid", "dot", "json", "html"])
def test_render_every_format(spans_file: Path, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"map.{fmt}"
    assert (
        main(
            [
                "map",
                "render",
                "--format",
                fmt,
                "--from",
                str(spans_file),
                "--declared",
                str(DECLARED),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = out.read_text()
    assert "rabbitmq/orders" in text
    if fmt == "json":
        data = json.loads(text)
        assert {n["id"]: n["region"] for n in data["nodes"]}["postgresql/shop"] == "eu"


def test_render_one_trace_as_a_swimlane(
    spans_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--trace draws only that trace's hops, in order."""
    lines = [json.loads(line) for line in spans_file.read_text().splitlines()]
    worker = next(s for s in lines if s["name"] == "orders process")
    assert (
        main(
            [
                "map",
                "render",
                "--format",
                "mermaid",
                "--from",
                str(spans_file),
                "--trace",
                worker["trace_id"],
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("sequenceDiagram")
    hops = [line for line in out.splitlines() if "->>" in line]
    assert len(hops) == 3  # queue -> worker, worker -> store, worker -> psp
    assert "orders-api" not in out
    assert (
        main(["map", "render", "--format", "json", "--from", str(spans_file), "--trace", "0" * 32])
        == 2
    )


def test_render_html_for_one_trace_has_the_swimlane(spans_file: Path, tmp_path: Path) -> None:
    lines = [json.loads(line) for line in spans_file.read_text().splitlines()]
    worker = next(s for s in lines if s["name"] == "orders process")
    out = tmp_path / "trace.html"
    assert (
        main(
            [
                "map",
                "render",
                "--format",
                "html",
                "--from",
                str(spans_file),
                "--trace",
                worker["trace_id"],
                "--out",
                str(out),
            ]
        )
        == 0
    )
    page = out.read_text()
    assert f"<h2>Trace {worker['trace_id']}</h2>" in page
    assert page.count('<tr class="step">') == 3
