"""An inline SVG of the map: a small layered layout, regions as horizontal bands.

Columns are layers (longest path from the nodes nothing flows into, cycles broken at the
first back edge seen); each region is a band across the whole width, so a trust boundary
is one box and never overlaps another. Sensitive flows are thick, plaintext-restricted
flows red. Every element carries a ``<title>`` (hover text) and ``data-`` attributes the
report's tests read from the DOM.
"""

from __future__ import annotations

from html import escape

from . import _names as n
from ._observed import ObservedMap
from ._render_text import style_of

__all__ = ["render_svg"]

NODE_W, NODE_H, COL_GAP, ROW_GAP, BAND_PAD, LABEL_W = 170, 44, 90, 26, 18, 90
COLORS = {
    n.SERVICE: "#dbeafe", n.STORE: "#dcfce7", n.QUEUE: "#fef9c3", n.EXTERNAL: "#fde2e2",
    n.DATASET: "#ede9fe",
}  # fmt: skip
EDGE = {
    "plain": ("#888", 1.2),
    "sensitive": ("#c2410c", 2.6),
    "plaintext-restricted": ("#d00", 3.2),
}


def _layers(observed: ObservedMap) -> dict[str, int]:
    succ: dict[str, list[str]] = {node: [] for node in observed.nodes}
    indeg = dict.fromkeys(observed.nodes, 0)
    for source, destination in sorted(observed.flows):
        if source != destination:
            succ[source].append(destination)
            indeg[destination] += 1
    layer = dict.fromkeys(observed.nodes, 0)
    # Kahn's order; what is left in cycles keeps the layer it reached
    queue = sorted(k for k, d in indeg.items() if d == 0) or sorted(observed.nodes)[:1]
    seen: set[str] = set()
    while queue:
        node = queue.pop(0)
        if node in seen:
            continue
        seen.add(node)
        for nxt in succ[node]:
            if nxt in seen:
                continue  # back edge: break the cycle here
            layer[nxt] = max(layer[nxt], layer[node] + 1)
            indeg[nxt] -= 1
            if indeg[nxt] <= 0:
                queue.append(nxt)
        if not queue:
            queue = sorted(k for k in observed.nodes if k not in seen)[:1]
    return layer


def render_svg(observed: ObservedMap) -> str:
    """The map as one ``<svg>`` element (no external references).

    Example::

        from flowtrace import map as ftmap

        attrs = {"messaging.system": "rabbitmq", "messaging.destination.name": "orders",
                 "flowtrace.data.categories": ["pii"], "flowtrace.region": "eu"}
        observed = ftmap.ObservedMap().add_all(
            [("t1", "s1", "PRODUCER", attrs, {"service.name": "shop"}, 0)]
        )
        svg = ftmap.render_svg(observed)
        assert svg.startswith("<svg") and "shop" in svg
    """
    layer = _layers(observed)
    regions = sorted({node.region or "" for node in observed.nodes.values()})
    positions: dict[str, tuple[float, float]] = {}
    bands: list[tuple[str, float, float]] = []
    y = 10.0
    for region in regions:
        members = [nd for nd in observed.nodes.values() if (nd.region or "") == region]
        per_col: dict[int, list[str]] = {}
        for node in sorted(members, key=lambda x: (x.kind, x.id)):
            per_col.setdefault(layer[node.id], []).append(node.id)
        rows = max(len(v) for v in per_col.values())
        height = BAND_PAD * 2 + rows * NODE_H + (rows - 1) * ROW_GAP
        for col, ids in per_col.items():
            for row, node_id in enumerate(ids):
                positions[node_id] = (
                    LABEL_W + col * (NODE_W + COL_GAP),
                    y + BAND_PAD + row * (NODE_H + ROW_GAP),
                )
        bands.append((region, y, height))
        y += height + 16
    columns = max(layer.values(), default=0) + 1
    width = LABEL_W + columns * (NODE_W + COL_GAP)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="map-svg" width="{width}" '
        f'height="{y:.0f}" viewBox="0 0 {width} {y:.0f}" font-family="sans-serif" '
        'font-size="12">',
        "<defs>",
    ]
    for style, (color, _) in EDGE.items():
        out.append(
            f'<marker id="arrow-{style}" viewBox="0 0 10 10" refX="10" refY="5" '
            f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>'
        )
    out.append("</defs>")
    for region, top, band_height in bands:
        label = f"region {region}" if region else "region unknown"
        out.append(
            f'<g class="region" data-region="{escape(region)}"><rect x="4" y="{top:.0f}" '
            f'width="{width - 8}" height="{band_height:.0f}" rx="10" fill="none" stroke="#475569" '
            f'stroke-dasharray="6 4"/><text x="14" y="{top + 20:.0f}" font-weight="bold" '
            f'fill="#334155">{escape(label)}</text></g>'
        )
    for key in sorted(observed.flows):
        flow = observed.flows[key]
        (x1, y1), (x2, y2) = positions[flow.source], positions[flow.destination]
        style = style_of(flow)
        color, stroke = EDGE[style]
        sx, sy, tx, ty = x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
        if tx <= sx:  # backwards or same column: loop below
            sx, tx = x1 + NODE_W / 2, x2 + NODE_W / 2
            sy, ty = y1 + NODE_H, y2 + NODE_H
            path = f"M{sx},{sy} C{sx},{sy + 60} {tx},{ty + 60} {tx},{ty}"
        else:
            mid = (sx + tx) / 2
            path = f"M{sx},{sy} C{mid},{sy} {mid},{ty} {tx},{ty}"
        cats = ", ".join(
            c if c in flow.plaintext else f"{c} (enc)" for c in sorted(flow.categories)
        )
        title = (
            f"{flow.source} -> {flow.destination}: {cats or 'no classified data'}; "
            f"{flow.count} spans"
        )
        out.append(
            f'<g class="flow" data-from="{escape(flow.source)}" '
            f'data-to="{escape(flow.destination)}" data-style="{style}">'
            f"<title>{escape(title)}</title>"
            f'<path d="{path}" fill="none" stroke="{color}" stroke-width="{stroke}" '
            f'marker-end="url(#arrow-{style})"/>'
        )
        if cats:
            out.append(
                f'<text x="{(sx + tx) / 2:.0f}" y="{(sy + ty) / 2 - 6:.0f}" '
                f'text-anchor="middle" fill="{color}" font-size="11">{escape(cats)}</text>'
            )
        out.append("</g>")
    for node_id, (x, y0) in sorted(positions.items()):
        node = observed.nodes[node_id]
        dash = ' stroke-dasharray="4 3"' if node.kind == n.EXTERNAL else ""
        radius = 22 if node.kind == n.STORE else 6
        tip = f"{node.kind} {node_id}; region {node.region or 'unknown'}"
        out.append(
            f'<g class="node" data-node="{escape(node_id)}" data-kind="{node.kind}">'
            f"<title>{escape(tip)}</title>"
            f'<rect x="{x}" y="{y0}" width="{NODE_W}" height="{NODE_H}" rx="{radius}" '
            f'fill="{COLORS.get(node.kind, "#eee")}" stroke="#334155"{dash}/>'
            f'<text x="{x + NODE_W / 2}" y="{y0 + 19}" text-anchor="middle" '
            f'font-weight="bold">{escape(node_id[:26])}</text>'
            f'<text x="{x + NODE_W / 2}" y="{y0 + 34}" text-anchor="middle" fill="#475569" '
            f'font-size="10">{escape(node.kind)}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out)
