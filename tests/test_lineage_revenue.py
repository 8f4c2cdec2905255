"""The revenue example: upstream(report) lists exactly the contributing charge ids."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "revenue_lineage.py"


@pytest.fixture
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("revenue_lineage", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["revenue_lineage"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["revenue_lineage"]


def test_upstream_of_report_is_the_january_succeeded_charges(
    example: ModuleType, tmp_path: Path
) -> None:
    """Failed and February charges are not upstream of the January report; the FX rate is."""
    result = example.main(str(tmp_path))
    sources = result.graph.sources(result.report)
    assert sorted(s for s in sources if s.startswith("stripe:charge#")) == [
        "stripe:charge#ch_1",
        "stripe:charge#ch_2",
        "stripe:charge#ch_4",
    ]
    assert set(sources) - {"stripe:charge#ch_1", "stripe:charge#ch_2", "stripe:charge#ch_4"} == {
        "ecb:fx/usd-eur#2026-01-31"
    }
    upstream = result.graph.upstream(result.report)
    assert upstream[:2] == [
        "warehouse://analytics/revenue_monthly#2026-01",
        "ecb:fx/usd-eur#2026-01-31",
    ]


def test_every_edge_is_both_a_span_and_buffered(example: ModuleType, tmp_path: Path) -> None:
    """At 10% head sampling the spans and the durable buffer hold the same 8 edges."""
    result = example.main(str(tmp_path))
    assert len(result.graph) == 8
    assert {e.id for e in result.buffered} == {e.id for e in result.graph}


def test_access_request_for_a_customer(example: ModuleType, tmp_path: Path) -> None:
    """derived_from(customer) reaches the report through their charges only, without emails."""
    result = example.main(str(tmp_path))
    derived = result.graph.derived_from(
        "ana@example.com", tenant="acme", pseudonymizer=result.pseudonymizer
    )
    assert derived[:2] == ["stripe:charge#ch_1", "stripe:charge#ch_4"]
    assert result.report in derived
    assert not any("ch_2" in d for d in derived)
    assert (
        result.graph.derived_from(
            "ana@example.com", tenant="globex", pseudonymizer=result.pseudonymizer
        )
        == []
    )
    assert "example.com" not in repr([e.to_dict() for e in result.graph])
