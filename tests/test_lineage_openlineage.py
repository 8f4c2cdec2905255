"""The OpenLineage bridge emits START and COMPLETE/FAIL RunEvents through a real transport."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.serde import Serde
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.transport import Transport

import flowtrace as ft
from flowtrace.lineage._openlineage import OpenLineageBridge, dataset_of, run_id


class Capture(Transport):
    kind = "capture"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, event: Any) -> None:
        self.events.append(json.loads(Serde.to_json(event)))


def test_step_emits_run_events_with_parent_and_trace_facets() -> None:
    """Each edge becomes START + COMPLETE with datasets, parent run and the trace ids."""
    capture = Capture()
    ft.configure(lineage=ft.lineage.LineageConfig(
        sinks=[OpenLineageBridge(OpenLineageClient(transport=capture), namespace="billing")]
    ))

    @ft.step("normalize", inputs=["stripe:charge#ch_1"], outputs=["postgres://db/orders#1"])
    def normalize() -> None:
        aggregate()

    @ft.step("aggregate", inputs=["postgres://db/orders#1"], outputs=["postgres://db/monthly#jan"])
    def aggregate() -> None:
        pass

    with ft.context(tenant="acme"):
        normalize()
    types = [(e["eventType"], e["job"]["name"]) for e in capture.events]
    assert types == [
        ("START", "aggregate"),
        ("COMPLETE", "aggregate"),
        ("START", "normalize"),
        ("COMPLETE", "normalize"),
    ]
    agg, norm = capture.events[1], capture.events[3]
    facet = norm["run"]["facets"]["flowtrace"]
    assert agg["run"]["facets"]["parent"]["run"]["runId"] == norm["run"]["runId"]
    assert norm["run"]["runId"] == run_id(facet["lineageId"])
    assert facet["lineageId"] == f"{facet['traceId']}-{facet['spanId']}"
    assert facet["tenant"] == "acme"
    assert (norm["inputs"][0]["namespace"], norm["inputs"][0]["name"]) == ("stripe", "charge")
    assert agg["outputs"][0]["namespace"] == "postgres://db"
    assert agg["outputs"][0]["name"] == "monthly"


def test_failed_step_emits_fail(tmp_path: Path) -> None:
    """A failing step emits FAIL, here through openlineage-python's own file transport."""
    path = tmp_path / "ol.jsonl"
    transport = FileTransport(FileConfig(log_file_path=str(path), append=True))
    ft.configure(lineage=ft.lineage.LineageConfig(sinks=[OpenLineageBridge(OpenLineageClient(transport=transport))]))

    @ft.step("boom", inputs=["mem:x"])
    def boom() -> None:
        raise RuntimeError

    with pytest.raises(RuntimeError):
        boom()
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "FAIL"]


def test_broken_transport_never_breaks_the_app(caplog: pytest.LogCaptureFixture) -> None:
    """A sink that raises is logged and counted; the step still returns."""

    class Broken(Transport):
        kind = "broken"

        def emit(self, event: Any) -> None:
            raise ConnectionError("marquez down")

    ft.configure(lineage=ft.lineage.LineageConfig(sinks=[OpenLineageBridge(OpenLineageClient(transport=Broken()))]))

    @ft.step("fine", outputs=["mem:y"])
    def fine() -> int:
        return 1

    assert fine() == 1
    assert "lineage sink" in caplog.text


@pytest.mark.parametrize(
    ("identifier", "dataset"),
    [
        ("postgres://billing/orders#42::email", ("postgres://billing", "orders")),
        ("s3://bucket/key/part", ("s3://bucket", "key/part")),
        ("stripe:charge/ch_1", ("stripe", "charge/ch_1")),
        ("orders", ("flowtrace", "orders")),
    ],
)
def test_dataset_naming(identifier: str, dataset: tuple[str, str]) -> None:
    """Identifiers map to OpenLineage (namespace, name); record keys and fields are dropped."""
    assert dataset_of(identifier) == dataset
