"""The HTML report: one self-contained file an auditor can open offline.

No script, no stylesheet or font from the network: inline CSS and an inline SVG. Every
value is HTML-escaped (span attributes are input, not markup).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from html import escape

from ._check import Finding
from ._declared import DeclaredMap
from ._observed import ObservedMap
from ._render_svg import render_svg
from ._render_text import style_of
from ._summary import region_answer
from ._trace import TraceStep

__all__ = ["render_html"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#0f172a}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #cbd5e1;padding:4px 6px;
text-align:left;vertical-align:top}th{background:#f1f5f9}
.error{color:#b91c1c;font-weight:bold}.warning{color:#a16207}.ok{color:#15803d;font-weight:bold}
.plaintext-restricted td:first-child{border-left:4px solid #d00}
.sensitive td:first-child{border-left:4px solid #c2410c}
code{font-size:11px}.legend span{margin-right:16px}
"""


def _ts(ns: int) -> str:
    if not ns:
        return ""
    return _dt.datetime.fromtimestamp(ns / 1e9, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _ids(evidence: Sequence[tuple[str, str]]) -> str:
    return "<br>".join(
        f'<code class="evidence">trace {escape(t)} span {escape(s)}</code>' for t, s in evidence
    )


def render_html(
    observed: ObservedMap,
    findings: Sequence[Finding] = (),
    *,
    declared: DeclaredMap | None = None,
    steps: Sequence[TraceStep] | None = None,
    trace_id: str | None = None,
    title: str = "flowtrace data-flow map",
    regions: Sequence[str] = (),
) -> str:
    """The report as one HTML string (map, residency answers, findings, per-flow evidence).

    Example::

        from pathlib import Path

        from flowtrace import map as ftmap

        attrs = {"messaging.system": "rabbitmq", "messaging.destination.name": "orders",
                 "flowtrace.data.categories": ["pii"], "flowtrace.region": "eu"}
        observed = ftmap.ObservedMap().add_all(
            [("t1", "s1", "PRODUCER", attrs, {"service.name": "shop"}, 0)]
        )
        declared = ftmap.parse_declared({"version": 1, "services": [{"name": "shop"}]})
        report = ftmap.check(observed, declared)
        html = ftmap.render_html(observed, report.findings, declared=declared)
        Path("map.html").write_text(html)
        assert "undeclared-flow" in html
    """
    data_regions = regions or sorted(
        {r for f in observed.flows.values() for r in f.data_regions if r != "-"}
    )
    failing = [f for f in findings if f.severity == "error" and not f.baselined]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p id="summary">{observed.spans} spans, {len(observed.nodes)} systems, '
        f"{len(observed.flows)} flows; "
        + (
            f'<span class="error" id="verdict">{len(failing)} failing finding(s)</span>'
            if failing
            else '<span class="ok" id="verdict">no failing finding</span>'
        )
        + "</p>",
        '<h2>Residency</h2><ul id="residency">',
    ]
    for region in data_regions:
        answer = region_answer(observed, region, declared)
        for line in answer.lines():
            parts.append(f'<li data-region="{escape(region)}">{escape(line)}</li>')
    parts += [
        "</ul>",
        '<h2>Map</h2><p class="legend"><span>thick orange: sensitive categories</span>'
        "<span>red: restricted category in plaintext</span>"
        "<span>(enc): travelled as flowtrace ciphertext</span>"
        "<span>dashed boxes: regions (trust boundaries)</span></p>",
        f'<div id="map">{render_svg(observed)}</div>',
        '<h2>Findings</h2><table id="findings"><tr><th>severity</th><th>rule</th>'
        "<th>flow</th><th>message</th><th>evidence</th></tr>",
    ]
    for f in findings:
        flow = f"{f.source} → {f.destination}" if f.source else (f.destination or "")
        parts.append(
            f'<tr class="finding" data-rule="{escape(f.rule)}" data-severity="{f.severity}">'
            f'<td class="{f.severity}">{f.severity}{" (baselined)" if f.baselined else ""}</td>'
            f"<td>{escape(f.rule)}</td><td>{escape(flow)}</td><td>{escape(f.message)}</td>"
            f"<td>{_ids(f.evidence)}</td></tr>"
        )
    if not findings:
        parts.append('<tr><td colspan="5">no findings (or no declared map given)</td></tr>')
    parts.append(
        '</table><h2>Flows</h2><table id="flows"><tr><th>from → to</th><th>spans</th>'
        "<th>categories</th><th>plaintext</th><th>purposes</th><th>legal bases</th>"
        "<th>data regions</th><th>tenants</th><th>first / last seen (UTC)</th>"
        "<th>sample evidence</th></tr>"
    )
    for key in sorted(observed.flows):
        fl = observed.flows[key]
        parts.append(
            f'<tr class="flow-row {style_of(fl)}" data-from="{escape(fl.source)}" '
            f'data-to="{escape(fl.destination)}"><td>{escape(fl.source)} → '
            f"{escape(fl.destination)}</td><td>{fl.count}</td>"
            f"<td>{escape(', '.join(sorted(fl.categories)))}</td>"
            f"<td>{escape(', '.join(sorted(fl.plaintext)))}</td>"
            f"<td>{escape(', '.join(sorted(fl.purposes)))}</td>"
            f"<td>{escape(', '.join(sorted(fl.legal_bases)))}</td>"
            f"<td>{escape(', '.join(sorted(fl.data_regions)))}</td><td>{len(fl.tenants)}</td>"
            f"<td>{_ts(fl.first_seen_ns)}<br>{_ts(fl.last_seen_ns)}</td>"
            f"<td>{_ids(fl.samples())}</td></tr>"
        )
    parts.append("</table>")
    if observed.refused:
        parts.append('<h2>Refused by the residency guard</h2><ul id="refused">')
        for (source, destination), ids in sorted(observed.refused.items()):
            parts.append(
                f"<li>{escape(source)} → {escape(destination)}: nothing sent<br>{_ids(ids)}</li>"
            )
        parts.append("</ul>")
    if steps is not None:
        parts.append(
            f'<h2>Trace {escape(trace_id or "")}</h2><table id="trace"><tr><th>#</th>'
            "<th>from → to</th><th>categories</th><th>plaintext</th><th>purpose</th>"
            "<th>span</th></tr>"
        )
        for number, step in enumerate(steps, 1):
            parts.append(
                f'<tr class="step"><td>{number}</td><td>{escape(step.source)} → '
                f"{escape(step.destination)}</td><td>{escape(', '.join(step.categories))}</td>"
                f"<td>{escape(', '.join(step.plaintext))}</td>"
                f"<td>{escape(step.purpose or '')}</td><td><code>{escape(step.span_id)}</code>"
                "</td></tr>"
            )
        parts.append("</table>")
    parts.append("<p><small>generated by flowtrace from recorded evidence</small></p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
