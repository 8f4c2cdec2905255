"""Lineage in SQLite: ingest edges once, ask "where did this number come from" by SQL.

    python examples/lineage_store.py

Records a small pipeline (charges -> orders -> monthly revenue) with real steps, ingests
the captured edges into a SQLite lineage store twice (the second time adds nothing) and
answers upstream, sources and downstream without loading the graph.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import flowtrace as ft
from flowtrace import lineage
from flowtrace.testing import Capture


def main() -> None:
    with Capture() as capture, ft.context(tenant="acme"):
        orders = []
        for charge in ("ch_1", "ch_2", "ch_3"):
            order = f"pg://billing/orders#{charge}"
            lineage.record("normalize", inputs=f"stripe:charge#{charge}", outputs=order)
            orders.append(order)
        lineage.record("monthly", inputs=orders, outputs="warehouse://revenue#2026-01")

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'lineage.db'}"
        with lineage.LineageStore(url) as store:
            print("ingested", store.ingest(lineage.read_edges(capture.spans())), "edges")
            print("again:", store.ingest(lineage.read_edges(capture.spans())), "new")
            figure = "warehouse://revenue#2026-01"
            print("upstream:", store.upstream(figure, tenant="acme"))
            sources = store.sources(figure, tenant="acme")
            print("sources:", sources)
            assert sources == [f"stripe:charge#ch_{i}" for i in (1, 2, 3)]
            print("downstream of ch_2:", store.downstream("stripe:charge#ch_2", tenant="acme"))


if __name__ == "__main__":
    main()
