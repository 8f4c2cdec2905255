"""The demo's map step, and the residency question it answers from evidence."""

from __future__ import annotations

from pathlib import Path

from flowtrace import map as ftmap

from ._map_system import system_spans


def test_region_answer_lists_systems_and_what_leaves() -> None:
    """EU data at a US store and in a US service both count as leaving the EU."""
    observed = ftmap.build(spans=system_spans())
    answer = ftmap.region_answer(observed, "eu")
    assert answer.systems == [
        "billing-worker",
        "orders-api",
        "payments-psp",
        "postgresql/shop",
        "rabbitmq/orders",
    ]
    assert not answer.leaves
    assert [f.destination for f in answer.unknown] == [
        "payments-psp",
        "postgresql/shop",
        "rabbitmq/orders",
    ]
    observed.add(
        "e" * 32,
        "f" * 16,
        "CLIENT",
        {
            "db.system": "s3",
            "db.namespace": "us-bucket",
            "flowtrace.region": "eu",
            "flowtrace.data.categories": ["pii"],
            "flowtrace.destination.region": "us",
        },
        {"service.name": "orders-api"},
        9,
    )
    answer = ftmap.region_answer(observed, "eu")
    assert [(f.destination, where) for f, where in answer.leaving] == [("s3/us-bucket", "us")]
    assert answer.foreign == [("s3/us-bucket", "us")]
    assert "evidence trace " + "e" * 32 in "\n".join(answer.lines())


def test_demo_step_answers_and_writes_the_report(tmp_path: Path) -> None:
    """The step finds the EU->US export, refuses it with the guard, writes the report."""
    from flowtrace._demo import map as step

    lines: list[str] = []
    step.run(tmp_path, lines.append)
    text = "\n".join(lines)
    assert "LEAVES eu: analytics-job -> s3/analytics-us (region us)" in text
    assert "residency guard: refused to send eu data to s3/analytics-us" in text
    assert "outcome=denied" in text
    page = (tmp_path / "map-report.html").read_text()
    assert 'data-rule="residency"' in page
    assert ftmap.residency_policy().rules == {}  # the step leaves no policy behind
