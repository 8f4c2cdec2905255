"""The observed map: nodes and flows aggregated from spans, one span at a time.

Memory is bounded by what is distinct (nodes, flows, and per flow the distinct
combinations of categories, purposes, regions and tenants), never by the number of spans:
a span updates counters and is dropped. Each flow keeps a few sample span ids per *facet*
(a category seen, a category in plaintext, a purpose, a data region...) so that every
finding can name the spans that prove it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import _names as n

__all__ = ["Flow", "Node", "ObservedMap", "SpanTuple", "boundary_edges", "span_categories"]

SpanTuple = tuple[str, str, str, Mapping[str, Any], Mapping[str, Any], int]
"""``(trace_id, span_id, kind, attributes, resource attributes, end time in ns)``.

``kind`` is the OTel span kind name (``SERVER``, ``CLIENT``, ``PRODUCER``, ``CONSUMER``,
``INTERNAL``). Every source in :mod:`flowtrace.map` yields these.

Example::

    from flowtrace import map as ftmap

    span: ftmap.SpanTuple = (
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "PRODUCER",
        {"messaging.system": "rabbitmq", "messaging.destination.name": "orders"},
        {"service.name": "shop"}, 1_700_000_000_000_000_000,
    )
    assert ftmap.ObservedMap().add_all([span]).flow("shop", "rabbitmq/orders").count == 1
"""

Evidence = tuple[str, str]
"""``(trace_id, span_id)`` of a span that showed something."""

MISSING = "-"
"""The facet value recorded when a purpose / legal basis / region was absent."""


@dataclass
class Node:
    """A system seen in the evidence: a service, a store, a queue, an external processor
    or a lineage dataset.

    Example::

        from flowtrace import map as ftmap

        attrs = {"db.system": "postgresql", "db.namespace": "shop",
                 "flowtrace.data.categories": ["pii"], "flowtrace.tenant": "acme"}
        resource = {"service.name": "orders", "flowtrace.service.region": "eu"}
        observed = ftmap.ObservedMap().add_all([("t1", "s1", "CLIENT", attrs, resource, 0)])
        node = observed.nodes["orders"]
        assert (node.kind, node.region, node.categories) == ("service", "eu", {"pii"})
        assert observed.nodes["postgresql/shop"].kind == "store"
    """

    id: str
    kind: str
    region: str | None = None
    spans: int = 0
    categories: set[str] = field(default_factory=set)
    """Data categories this node processed (handled on its spans or received by a flow)."""
    data_regions: set[str] = field(default_factory=set)
    """Flow-context regions (where the data may live) of the data it processed."""
    purposes: set[str] = field(default_factory=set)
    tenants: set[str] = field(default_factory=set)

    def to_dict(self, *, tenant_names: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "region": self.region,
            "spans": self.spans,
            "categories": sorted(self.categories),
            "data_regions": sorted(self.data_regions),
            "purposes": sorted(self.purposes),
            "tenants": len(self.tenants),
        }
        if tenant_names:
            out["tenant_names"] = sorted(self.tenants)
        return out


@dataclass
class Flow:
    """Data handed from one node to another, aggregated over every span that showed it.

    Example::

        from flowtrace import map as ftmap

        attrs = {"messaging.system": "rabbitmq", "messaging.destination.name": "orders",
                 "flowtrace.data.categories": ["pii"], "flowtrace.purpose": "billing"}
        observed = ftmap.ObservedMap().add_all(
            [("t1", f"s{i}", "PRODUCER", attrs, {"service.name": "shop"}, 0) for i in range(5)]
        )
        flow = observed.flow("shop", "rabbitmq/orders")
        assert (flow.count, flow.purposes, flow.plaintext) == (5, {"billing"}, {"pii"})
        print(flow.samples("plaintext:pii"))         # span ids that prove it
    """

    source: str
    destination: str
    count: int = 0
    first_seen_ns: int = 0
    last_seen_ns: int = 0
    categories: set[str] = field(default_factory=set)
    plaintext: set[str] = field(default_factory=set)
    """Categories seen at least once *not* encrypted on this flow."""
    encrypted: set[str] = field(default_factory=set)
    """Categories seen at least once as flowtrace ciphertext on this flow."""
    purposes: set[str] = field(default_factory=set)
    legal_bases: set[str] = field(default_factory=set)
    data_regions: set[str] = field(default_factory=set)
    tenants: set[str] = field(default_factory=set)
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)
    """Sample span ids per facet: ``any``, ``category:pii``, ``plaintext:pii``,
    ``purpose:billing`` / ``purpose:-`` (absent), ``legal_basis:...``, ``region:eu``."""
    _seen: set[tuple[Any, ...]] = field(default_factory=set, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.destination)

    def samples(self, facet: str = "any") -> list[Evidence]:
        return list(self.evidence.get(facet, ()))

    def to_dict(self, *, tenant_names: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "from": self.source,
            "to": self.destination,
            "count": self.count,
            "first_seen_unix_nano": self.first_seen_ns,
            "last_seen_unix_nano": self.last_seen_ns,
            "categories": sorted(self.categories),
            "plaintext": sorted(self.plaintext),
            "encrypted": sorted(self.encrypted),
            "purposes": sorted(self.purposes),
            "legal_bases": sorted(self.legal_bases),
            "data_regions": sorted(self.data_regions),
            "tenants": len(self.tenants),
            "evidence": {
                facet: [{"trace_id": t, "span_id": s} for t, s in ids]
                for facet, ids in sorted(self.evidence.items())
            },
        }
        if tenant_names:
            out["tenant_names"] = sorted(self.tenants)
        return out


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _text(value: Any) -> Any:
    """Attribute values are strings by spec; anything else from a foreign file is made one
    (so it can be counted and hashed) instead of breaking the build."""
    return value if value is None or type(value) is str else str(value)


def _dataset(identifier: str) -> str:
    """The dataset part of a lineage identifier (``pg://app/users#42::email``)."""
    return identifier.split("#", 1)[0].split("::", 1)[0]


def _http_target(attrs: Mapping[str, Any]) -> str | None:
    peer = attrs.get(n.PEER_SERVICE)
    if peer:
        return str(peer)
    host = attrs.get(n.SERVER_ADDRESS)
    if host:
        port = attrs.get(n.SERVER_PORT)
        return f"{host}:{port}" if port else str(host)
    url = attrs.get(n.URL_FULL) or attrs.get(n.HTTP_URL_OLD)
    if url:
        netloc = urlsplit(str(url)).netloc.rsplit("@", 1)[-1]
        return netloc or None
    return None


def span_categories(attrs: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(categories, encrypted categories)`` a span shows: stated on it with
    :func:`flowtrace.map.record_data`, else what the scrubber found in it.

    A statement wins: the scrubber also matches the span's own metadata (an IP address
    in ``server.address`` is ``network``), which is not data handed over.
    """
    categories = _strings(attrs.get(n.DATA_CATEGORIES))
    scrubbed = attrs.get(n.SCRUB_CATEGORIES)
    if scrubbed and not categories:
        extra = tuple(c for c in _strings(scrubbed) if c != n.UNCLASSIFIED)
        categories = tuple(sorted({*categories, *extra}))
    if not categories:
        return (), ()
    return categories, _strings(attrs.get(n.DATA_ENCRYPTED))


def boundary_edges(service: str, kind: str, attrs: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(source, destination, kind of the node that is not the service)`` of the flows
    one span shows (empty when it crosses no boundary)."""
    get = attrs.get
    system = get(n.MESSAGING_SYSTEM)
    if system and kind in ("PRODUCER", "CONSUMER", "CLIENT"):
        queue = f"{system}/{get(n.MESSAGING_DESTINATION) or '(default)'}"
        return [(queue, service, n.QUEUE)] if kind == "CONSUMER" else [(service, queue, n.QUEUE)]
    db = get(n.DB_SYSTEM)
    if db:
        name = get(n.DB_NAMESPACE) or get(n.DB_NAME_OLD) or get(n.SERVER_ADDRESS) or "(default)"
        return [(service, f"{db}/{name}", n.STORE)]
    if kind == "CLIENT" and (get(n.HTTP_METHOD) or get(n.HTTP_METHOD_OLD)):
        target = _http_target(attrs)
        return [(service, target, n.EXTERNAL)] if target and target != service else []
    if get(n.LINEAGE_STEP) is not None:
        edges: dict[tuple[str, str, str], None] = {}
        for identifier in _strings(get(n.LINEAGE_INPUTS)):
            edges[(_dataset(identifier), service, n.DATASET)] = None
        for identifier in _strings(get(n.LINEAGE_OUTPUTS)):
            edges[(service, _dataset(identifier), n.DATASET)] = None
        return list(edges)
    return []


class ObservedMap:
    """Nodes and flows built from spans; add spans with :meth:`add` or :meth:`add_all`.

    Flows come from spans that cross a boundary, read from the OTel semantic conventions:
    ``messaging.*`` (producer: service -> queue, consumer: queue -> service), ``db.*``
    (service -> store), outbound HTTP (``CLIENT`` span with ``http.request.method``:
    service -> ``peer.service`` or ``server.address``) and lineage edge spans
    (dataset -> service -> dataset). Every span also counts toward its service's node.

    Not thread-safe: build it from one thread (sources are read lazily, one span at a
    time). For concurrent producers count flows with :class:`FlowMetricsSpanProcessor`.

    Example::

        from flowtrace import map as ftmap

        observed = ftmap.ObservedMap(samples=2)
        observed.add("t1", "s1", "SERVER", {"flowtrace.tenant": "acme"}, {"service.name": "api"})
        observed.add("t1", "s2", "CLIENT",
                     {"http.request.method": "POST", "server.address": "api.stripe.com",
                      "flowtrace.data.categories": ["pci"]},
                     {"service.name": "api"})
        assert observed.nodes["api.stripe.com"].kind == "external"
        assert observed.to_dict()["flows"][0]["categories"] == ["pci"]
    """

    def __init__(self, *, samples: int = 3) -> None:
        self.samples = samples
        self.nodes: dict[str, Node] = {}
        self.flows: dict[tuple[str, str], Flow] = {}
        self.spans = 0
        self.refused: dict[tuple[str, str], list[Evidence]] = {}
        """Sends the residency guard refused (nothing left): samples per would-be flow."""

    # -- building --------------------------------------------------------------------------

    def node(self, node_id: str, kind: str, region: str | None = None) -> Node:
        node = self.nodes.get(node_id)
        if node is None:
            node = self.nodes[node_id] = Node(node_id, kind, region)
        elif region and not node.region:
            node.region = region
        return node

    def add_all(self, spans: Iterable[SpanTuple]) -> ObservedMap:
        """Add every span of an iterable (consumed lazily, one at a time)."""
        add = self.add
        for trace_id, span_id, kind, attrs, resource, end_ns in spans:
            add(trace_id, span_id, kind, attrs, resource, end_ns)
        return self

    def add(
        self,
        trace_id: str,
        span_id: str,
        kind: str,
        attrs: Mapping[str, Any],
        resource: Mapping[str, Any],
        end_ns: int = 0,
    ) -> None:
        """Add one span."""
        self.spans += 1
        get = attrs.get
        service = str(resource.get(n.SERVICE_NAME) or get(n.SERVICE_NAME) or "unknown_service")
        region = _text(get(n.SERVICE_REGION) or resource.get(n.SERVICE_REGION))
        node = self.nodes.get(service)
        if node is None or (region and not node.region):
            node = self.node(service, n.SERVICE, region)
        if node.kind != n.SERVICE:
            node.kind = n.SERVICE  # first seen as an HTTP peer, now from the inside
        node.spans += 1

        categories, encrypted = span_categories(attrs)
        purpose = _text(get(n.PURPOSE))
        data_region = _text(get(n.REGION))
        tenant = _text(get(n.TENANT))
        if categories:
            node.categories.update(categories)
        if data_region:
            node.data_regions.add(data_region)
        if purpose:
            node.purposes.add(purpose)
        if tenant:
            node.tenants.add(tenant)

        if kind == "INTERNAL" and get(n.LINEAGE_STEP) is None and get(n.DB_SYSTEM) is None:
            return  # the common case: nothing crosses a boundary
        if get(n.REFUSED):
            for source, destination in self._edges(service, kind, attrs):
                ids = self.refused.setdefault((source, destination), [])
                if len(ids) < self.samples:
                    ids.append((trace_id, span_id))
            return
        basis = _text(get(n.LEGAL_BASIS))
        signature = (categories, encrypted, purpose, basis, data_region, tenant)
        for source, destination in self._edges(service, kind, attrs):
            self._flow(source, destination, signature, trace_id, span_id, end_ns)

    def _edges(self, service: str, kind: str, attrs: Mapping[str, Any]) -> list[tuple[str, str]]:
        edges = boundary_edges(service, kind, attrs)
        region = _text(attrs.get(n.DESTINATION_REGION))
        for source, destination, other_kind in edges:
            other = source if destination == service else destination
            if other_kind == n.EXTERNAL and other in self.nodes:
                continue  # an HTTP call to a service we also saw from the inside
            self.node(other, other_kind, region if other == destination else None)
        return [(s, d) for s, d, _ in edges]

    def _flow(
        self,
        source: str,
        destination: str,
        signature: tuple[Any, ...],
        trace_id: str,
        span_id: str,
        end_ns: int,
    ) -> None:
        flow = self.flows.get((source, destination))
        if flow is None:
            flow = self.flows[(source, destination)] = Flow(source, destination)
            flow.first_seen_ns = end_ns
        flow.count += 1
        if end_ns > flow.last_seen_ns:
            flow.last_seen_ns = end_ns
        elif end_ns and end_ns < flow.first_seen_ns:
            flow.first_seen_ns = end_ns
        if signature in flow._seen and len(flow.evidence.get("any", ())) >= self.samples:
            return  # nothing new to learn from this span
        flow._seen.add(signature)
        categories, encrypted, purpose, basis, region, tenant = signature
        evidence = (trace_id, span_id)
        facets = ["any"]
        for category in categories:
            flow.categories.add(category)
            facets.append(f"category:{category}")
            if category in encrypted:
                flow.encrypted.add(category)
            else:
                flow.plaintext.add(category)
                facets.append(f"plaintext:{category}")
        # An absent purpose / legal basis only matters when data was handed over.
        if purpose or categories:
            flow.purposes.add(purpose or MISSING)
            facets.append(f"purpose:{purpose or MISSING}")
        if basis or categories:
            flow.legal_bases.add(basis or MISSING)
            facets.append(f"legal_basis:{basis or MISSING}")
        flow.data_regions.add(region or MISSING)
        facets.append(f"region:{region or MISSING}")
        if tenant:
            flow.tenants.add(tenant)
        for facet in facets:
            ids = flow.evidence.setdefault(facet, [])
            if len(ids) < self.samples and evidence not in ids:
                ids.append(evidence)
        target = self.nodes[destination]
        if categories:
            target.categories.update(categories)
        if region:
            target.data_regions.add(region)
        if purpose:
            target.purposes.add(purpose)
        if tenant:
            target.tenants.add(tenant)

    # -- reading ---------------------------------------------------------------------------

    def flow(self, source: str, destination: str) -> Flow:
        """The flow ``source -> destination``; ``KeyError`` when it was not observed."""
        return self.flows[(source, destination)]

    def to_dict(self, *, tenant_names: bool = False) -> dict[str, Any]:
        """The JSON output (docs/spec/map.md, "Observed map JSON")."""
        return {
            "flowtrace_map": 1,
            "spans": self.spans,
            "nodes": [self.nodes[k].to_dict(tenant_names=tenant_names) for k in sorted(self.nodes)],
            "flows": [self.flows[k].to_dict(tenant_names=tenant_names) for k in sorted(self.flows)],
        }
