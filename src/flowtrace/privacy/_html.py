"""A readable, self-contained HTML summary of a subject-access bundle (no script, no
network: one file a privacy team can attach to its answer)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any

__all__ = ["bundle_html", "escape_table"]

_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}code{font-size:12px}"
)


def escape_table(headers: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def bundle_html(bundle: Mapping[str, Any]) -> str:
    """Render a subject-access bundle (:func:`subject_report`) as one HTML page. Every value
    is escaped: the data is the subject's, and may hold anything.

    Example::

        from flowtrace import privacy

        page = privacy.bundle_html({"tenant": "acme", "data": [], "recipients": []})
        assert page.startswith("<!doctype html>") and "<script" not in page
    """
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Subject access report ({escape(str(bundle.get('tenant')))})</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Subject access report</h1>",
        escape_table(["tenant", "subject pseudonym", "created"],
               [[bundle.get("tenant"), bundle.get("subject_pseudonym"),
                 bundle.get("created_at")]]),
        "<h2>Where the data went</h2>",
        escape_table(["recipient", "kind", "region", "categories", "sample traces"],
               [[r["node"], r["kind"], r.get("region") or "", ", ".join(r["categories"]),
                 " ".join(r["sample_traces"])] for r in bundle.get("recipients", [])]),
        "<h2>Derived records</h2>",
        escape_table(["identifier"], [[d] for d in bundle.get("derived", [])]),
        "<h2>Who accessed it</h2>",
        escape_table(["when", "who", "action", "resource", "purpose"],
               [[a.get("ts"), a.get("actor"), a.get("action"), a.get("resource"),
                 a.get("purpose")] for a in bundle.get("accesses", [])]),
        "<h2>The data</h2>",
    ]
    for item in bundle.get("data", []):
        parts.append(f"<h3>{escape(str(item['store']))}</h3>")
        records = item.get("records", [])
        keys = sorted({k for r in records for k in r})
        parts.append(escape_table(keys, [[json.dumps(r.get(k)) for k in keys] for r in records]))
    missing = bundle.get("not_fetched", [])
    if missing:
        parts.append("<h2>Recipients without a registered fetcher</h2>")
        parts.append(escape_table(["recipient"], [[m] for m in missing]))
    signature = bundle.get("signature") or {}
    parts.append(
        "<p>Signed with the audit key <code>"
        f"{escape(str(signature.get('key_id', 'unsigned')))}</code>; verify the JSON bundle "
        "with <code>flowtrace.privacy.verify_signed</code>.</p></body></html>"
    )
    return "".join(parts)
