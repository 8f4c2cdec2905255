"""Records of processing activities (GDPR Art. 30(1)) from the declared and observed maps.

One record per processing activity, an activity being a purpose. Each field says where it
comes from: ``evidenced`` (seen in spans, lineage or audit, with sample trace ids; the
declaration agrees or says nothing), ``declared-only`` (declared, never observed) or
``observed-only`` (observed, not declared). Activities observed but never declared come
first: they are what a hand-kept register misses.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..map import DeclaredMap, Flow, ObservedMap
from ._html import escape_table

__all__ = ["RECORD_FIELDS", "render_ropa", "ropa"]

RECORD_FIELDS = (
    "categories_of_data", "legal_bases", "recipients", "third_countries", "retention",
    "security_measures",
)
MISSING = "-"


def _field(declared: Iterable[str], observed: Mapping[str, list[str]]) -> dict[str, Any]:
    d, o = set(declared), set(observed)
    status = "evidenced" if o and (not d or o <= d) else "declared-only" if not o else (
        "observed-only" if not d & o else "evidenced")
    samples = sorted({t for v in o for t in observed[v]})[:3]
    return {"value": sorted(d | o), "status": status, "declared": sorted(d),
            "observed": sorted(o), "sample_traces": samples}


def _traces(flow: Flow, facet: str) -> list[str]:
    return [t for t, _ in flow.samples(facet)]


def ropa(
    observed: ObservedMap, declared: DeclaredMap, *, controller: str | None = None
) -> list[dict[str, Any]]:
    """Art. 30(1) records, one per purpose, undeclared activities first.

    Example::

        from flowtrace import map as ftmap, privacy

        declared = ftmap.parse_declared({
            "version": 1, "services": [{"name": "api"}], "stores": [{"name": "postgresql/app"}],
            "flows": [
            {"from": "api", "to": "postgresql/app", "categories": ["pii"],
             "purposes": ["signup"], "legal_bases": ["consent"]}]})
        (record,) = privacy.ropa(ftmap.ObservedMap(), declared, controller="Acme Ltd")
        assert record["purpose"] == "signup" and record["declared"] is True
        assert record["categories_of_data"]["status"] == "declared-only"
    """
    purposes: dict[str, dict[str, Any]] = {}

    def activity(purpose: str) -> dict[str, Any]:
        return purposes.setdefault(purpose, {
            "declared": False, "observed": False, "flows": set(),
            "categories": ({}, set()), "bases": ({}, set()), "recipients": ({}, set()),
            "countries": ({}, set()), "retention": set(), "encrypted": {}, "plaintext": {},
        })

    for decl in declared.flows.values():
        for purpose in decl.purposes:
            a = activity(purpose)
            a["declared"] = True
            a["flows"].add(f"{decl.source} -> {decl.destination}")
            a["categories"][1].update(decl.categories)
            a["bases"][1].update(decl.legal_bases)
            a["recipients"][1].add(decl.destination)
            region = declared.region_of(decl.destination)
            if region:
                a["countries"][1].add(region)
            node = declared.nodes.get(decl.destination)
            for retention in (decl.retention, node.retention if node else None):
                if retention:
                    a["retention"].add(retention)
    for flow in observed.flows.values():
        destination = observed.nodes[flow.destination]
        for purpose in flow.purposes - {MISSING}:
            a = activity(purpose)
            a["observed"] = True
            a["flows"].add(f"{flow.source} -> {flow.destination}")
            for category in flow.categories:
                a["categories"][0].setdefault(category, []).extend(
                    _traces(flow, f"category:{category}"))
                kind = "plaintext" if category in flow.plaintext else "encrypted"
                a[kind].setdefault(category, []).extend(_traces(flow, f"category:{category}"))
            for basis in flow.legal_bases - {MISSING}:
                a["bases"][0].setdefault(basis, []).extend(_traces(flow, f"legal_basis:{basis}"))
            if destination.kind != "service":
                a["recipients"][0].setdefault(flow.destination, []).extend(_traces(flow, "any"))
            region = destination.region or declared.region_of(flow.destination)
            if region:
                a["countries"][0].setdefault(region, []).extend(_traces(flow, "any"))

    records = []
    for purpose, a in purposes.items():
        dpa = {
            name: declared.nodes[name].dpa
            for name in a["recipients"][0].keys() | a["recipients"][1]
            if name in declared.nodes and declared.nodes[name].dpa
        }
        records.append({
            "purpose": purpose,
            "declared": a["declared"],
            "observed": a["observed"],
            "controller": {"value": controller, "status": "declared-only"},
            "categories_of_subjects": {
                "value": [], "status": "not-recorded",
                "why": "the map does not record subject categories; keep them in the register",
            },
            "categories_of_data": _field(a["categories"][1], a["categories"][0]),
            "legal_bases": _field(a["bases"][1], a["bases"][0]),
            "recipients": {**_field(a["recipients"][1], a["recipients"][0]),
                           "transfer_safeguards": dpa},
            "third_countries": _field(a["countries"][1], a["countries"][0]),
            "retention": {"value": sorted(a["retention"]),
                          "status": "declared-only" if a["retention"] else "not-recorded"},
            "security_measures": {
                "encrypted_categories": sorted(a["encrypted"]),
                "plaintext_categories": sorted(a["plaintext"]),
                "status": "evidenced" if a["observed"] else "declared-only",
                "sample_traces": sorted({t for v in a["plaintext"].values() for t in v})[:3],
            },
            "flows": sorted(a["flows"]),
        })
    # Undeclared activities first, then declared-only, then the rest; by purpose within.
    records.sort(key=lambda r: (r["declared"], r["observed"], r["purpose"]))
    return records


def render_ropa(records: list[dict[str, Any]], fmt: str) -> str:
    """The records as ``json``, ``csv`` (one row per activity) or ``html``.

    Example::

        from flowtrace import privacy

        assert privacy.render_ropa([], "json") == "[]"
    """
    if fmt == "json":
        return json.dumps(records, indent=1, sort_keys=True)
    rows = [_row(r) for r in records]
    headers = ["purpose", "status", "controller", *RECORD_FIELDS, "evidence"]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(headers)
        writer.writerows(rows)
        return out.getvalue()
    if fmt == "html":
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>Records of processing"
            "</title></head><body><h1>Records of processing activities (Art. 30)</h1>"
            + escape_table(headers, rows) + "</body></html>"
        )
    from ..errors import PrivacyError

    raise PrivacyError(f"unknown RoPA format {fmt!r}; use csv, json or html")


def _row(record: Mapping[str, Any]) -> list[str]:
    def cell(name: str) -> str:
        f: Mapping[str, Any] = record[name]
        if name == "security_measures":
            return (f"encrypted: {', '.join(f['encrypted_categories']) or '-'}; plaintext: "
                    f"{', '.join(f['plaintext_categories']) or '-'} [{f['status']}]")
        return f"{', '.join(f['value']) or '-'} [{f['status']}]"

    status = ("UNDECLARED" if not record["declared"] else
              "declared-only" if not record["observed"] else "evidenced")
    samples = sorted({t for name in RECORD_FIELDS for t in record[name].get("sample_traces", [])})
    return [record["purpose"], status, record["controller"]["value"] or "-",
            *(cell(n) for n in RECORD_FIELDS), " ".join(samples[:3])]
