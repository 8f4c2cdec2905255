"""Text renderings: Mermaid and Graphviz DOT (graph and per-trace swimlane), and JSON.

Nodes are grouped by region (a trust boundary); flows carrying sensitive categories are
drawn thick, flows carrying a *restricted* category in plaintext are red.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from ..classify import Category, Classification, Level
from . import _names as n
from ._check import Finding
from ._observed import Flow, Node, ObservedMap
from ._trace import TraceStep

__all__ = ["RESTRICTED", "render_dot", "render_json", "render_mermaid", "style_of"]

RESTRICTED = frozenset(
    str(c) for c in Category if Classification.parse(c).level >= Level.RESTRICTED
)
"""Categories classified restricted by default (pci, phi, credential).

Restricted categories in plaintext are drawn in red by every renderer.

Example::

    from flowtrace import map as ftmap

    assert {"pci", "phi", "credential"} <= ftmap.RESTRICTED
    assert "pii" not in ftmap.RESTRICTED
"""


def style_of(flow: Flow) -> str:
    """``plaintext-restricted`` (red), ``sensitive`` (thick) or ``plain``."""
    if flow.plaintext & RESTRICTED:
        return "plaintext-restricted"
    if flow.categories:
        return "sensitive"
    return "plain"


def _label(flow: Flow) -> str:
    parts = []
    for category in sorted(flow.categories):
        parts.append(category if category in flow.plaintext else f"{category} (enc)")
    return ", ".join(parts) or f"{flow.count}x"


def _ident(value: str, ids: dict[str, str]) -> str:
    if value not in ids:
        ids[value] = f"n{len(ids)}_" + re.sub(r"\W", "_", value)[:24]
    return ids[value]


def _by_region(observed: ObservedMap) -> dict[str, list[Node]]:
    groups: dict[str, list[Node]] = {}
    for node in sorted(observed.nodes.values(), key=lambda x: (x.kind, x.id)):
        groups.setdefault(node.region or "", []).append(node)
    return dict(sorted(groups.items()))


_MERMAID_SHAPES = {
    n.SERVICE: ("[", "]"),
    n.STORE: ("[(", ")]"),
    n.QUEUE: ("[/", "/]"),
    n.EXTERNAL: ("{{", "}}"),
    n.DATASET: ("[(", ")]"),
}


def _mq(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def render_mermaid(observed: ObservedMap, steps: Sequence[TraceStep] | None = None) -> str:
    """A Mermaid flowchart (or, given ``steps``, a sequence diagram of one trace).

    Example::

        from flowtrace import map as ftmap

        attrs = {"messaging.system": "rabbitmq", "messaging.destination.name": "orders",
                 "flowtrace.data.categories": ["pii"], "flowtrace.region": "eu"}
        observed = ftmap.ObservedMap().add_all(
            [("t1", "s1", "PRODUCER", attrs, {"service.name": "shop"}, 0)]
        )
        text = ftmap.render_mermaid(observed)
        assert text.startswith("flowchart") and "rabbitmq/orders" in text
        steps = ftmap.trace_steps([("t1", "s1", "PRODUCER", attrs, {"service.name": "shop"}, 0)],
                                  "t1")
        assert ftmap.render_mermaid(observed, steps).startswith("sequenceDiagram")
    """
    ids: dict[str, str] = {}
    if steps is not None:
        lines = ["sequenceDiagram"]
        for step in steps:
            what = (
                ", ".join(c if c in step.plaintext else f"{c} (enc)" for c in step.categories)
                or "no classified data"
            )
            arrow = "-x" if set(step.plaintext) & RESTRICTED else "->>"
            lines.append(
                f"    {_ident(step.source, ids)}{arrow}{_ident(step.destination, ids)}: "
                f"{what} [span {step.span_id}]"
            )
        header = [f"    participant {v} as {k}" for k, v in ids.items()]
        return "\n".join([lines[0], *header, *lines[1:]]) + "\n"
    lines = ["flowchart LR"]
    for region, nodes in _by_region(observed).items():
        indent = "    "
        if region:
            lines.append(
                f"    subgraph {_ident('region:' + region, ids)}[{_mq('region ' + region)}]"
            )
            indent = "        "
        for node in nodes:
            left, right = _MERMAID_SHAPES.get(node.kind, ("[", "]"))
            lines.append(f"{indent}{_ident(node.id, ids)}{left}{_mq(node.id)}{right}")
        if region:
            lines.append("    end")
    red: list[int] = []
    for index, key in enumerate(sorted(observed.flows)):
        flow = observed.flows[key]
        style = style_of(flow)
        arrow = "-->" if style == "plain" else "==>"
        lines.append(
            f"    {_ident(flow.source, ids)} {arrow}|{_mq(_label(flow))}| "
            f"{_ident(flow.destination, ids)}"
        )
        if style == "plaintext-restricted":
            red.append(index)
    if red:
        lines.append(f"    linkStyle {','.join(map(str, red))} stroke:#d00,stroke-width:3px")
    return "\n".join(lines) + "\n"


_DOT_SHAPES = {
    n.SERVICE: "box", n.STORE: "cylinder", n.QUEUE: "cds", n.EXTERNAL: "hexagon",
    n.DATASET: "folder",
}  # fmt: skip


def _dq(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dot(observed: ObservedMap, steps: Sequence[TraceStep] | None = None) -> str:
    """A Graphviz digraph; regions are clusters. Given ``steps``, one trace's hops, numbered.

    Example::

        from pathlib import Path

        from flowtrace import map as ftmap

        attrs = {"messaging.system": "rabbitmq", "messaging.destination.name": "orders",
                 "flowtrace.data.categories": ["pii"], "flowtrace.region": "eu"}
        observed = ftmap.ObservedMap().add_all(
            [("t1", "s1", "PRODUCER", attrs, {"service.name": "shop"}, 0)]
        )
        Path("map.dot").write_text(ftmap.render_dot(observed))   # dot -Tsvg map.dot
        assert Path("map.dot").read_text().startswith("digraph flowtrace_map {")
    """
    lines = ["digraph flowtrace_map {", "  rankdir=LR;", "  node [fontname=Helvetica];"]
    if steps is not None:
        for number, step in enumerate(steps, 1):
            color = "#d00" if set(step.plaintext) & RESTRICTED else "black"
            label = f"{number}. " + (", ".join(step.categories) or "-")
            lines.append(
                f"  {_dq(step.source)} -> {_dq(step.destination)} "
                f"[label={_dq(label)}, color={_dq(color)}];"
            )
        return "\n".join([*lines, "}"]) + "\n"
    for index, (region, nodes) in enumerate(_by_region(observed).items()):
        indent = "  "
        if region:
            lines += [f"  subgraph cluster_{index} {{", f"    label={_dq('region ' + region)};"]
            indent = "    "
        for node in nodes:
            lines.append(f"{indent}{_dq(node.id)} [shape={_DOT_SHAPES.get(node.kind, 'box')}];")
        if region:
            lines.append("  }")
    for key in sorted(observed.flows):
        flow = observed.flows[key]
        style = style_of(flow)
        attrs = [f"label={_dq(_label(flow))}"]
        if style != "plain":
            attrs.append("penwidth=2.5")
        if style == "plaintext-restricted":
            attrs.append('color="#d00"')
        lines.append(f"  {_dq(flow.source)} -> {_dq(flow.destination)} [{', '.join(attrs)}];")
    return "\n".join([*lines, "}"]) + "\n"


def render_json(
    observed: ObservedMap,
    findings: Sequence[Finding] = (),
    steps: Sequence[TraceStep] | None = None,
    *,
    tenant_names: bool = False,
) -> str:
    """The observed map JSON (docs/spec/map.md), with findings and trace steps if given.

    Tenants are counted, not named, unless ``tenant_names=True``.

    Example::

        import json

        from flowtrace import map as ftmap

        attrs = {"messaging.system": "rabbitmq", "messaging.destination.name": "orders",
                 "flowtrace.data.categories": ["pii"], "flowtrace.region": "eu"}
        observed = ftmap.ObservedMap().add_all(
            [("t1", "s1", "PRODUCER", attrs, {"service.name": "shop"}, 0)]
        )
        data = json.loads(ftmap.render_json(observed))
        assert data["flowtrace_map"] == 1 and data["findings"] == []
        assert data["flows"][0]["to"] == "rabbitmq/orders"
    """
    data: dict[str, Any] = observed.to_dict(tenant_names=tenant_names)
    data["findings"] = [f.to_dict() for f in findings]
    if steps is not None:
        data["trace"] = [
            {
                "time_unix_nano": s.time_ns,
                "span_id": s.span_id,
                "from": s.source,
                "to": s.destination,
                "categories": list(s.categories),
                "plaintext": list(s.plaintext),
                "purpose": s.purpose,
                "region": s.region,
            }
            for s in steps
        ]
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
