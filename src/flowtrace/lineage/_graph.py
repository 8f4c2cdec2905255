"""``LineageGraph``: answer "where did this come from" and "what was derived from whom".

Nodes are data identifiers, edges are :class:`LineageEdge` runs. Identifiers are interned
to ints and the graph keeps five indexes (producers and consumers of each identifier,
parent and child edges of each edge, edges of each subject), so a query touches only the
part of the graph it returns: ``upstream``/``downstream`` over a million edges answer in
well under a second (benchmarks/bench_lineage.py).

Upstream of an identifier = the inputs of the edges that produced it, their upstream, and
the inputs of every *parent edge* (lineage parents carried in the flow context), which is
how a consumer's output reaches the producer's input across processes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..errors import LineageError
from ._edge import LineageEdge
from ._pseudonym import Pseudonymizer, is_pseudonym

__all__ = ["LineageGraph", "TraceNode"]


@dataclass(frozen=True)
class TraceNode:
    """One identifier in a :meth:`LineageGraph.trace` tree and the edges that made it.

    Example::

        import flowtrace as ft
        from flowtrace import lineage
        from flowtrace.testing import Capture

        with Capture() as capture, ft.context(tenant="acme"):
            lineage.record("copy", inputs="s3://raw/a.csv", outputs="s3://clean/a.csv")

        graph = lineage.LineageGraph(lineage.read_edges(capture.spans()))
        tree = graph.trace("s3://clean/a.csv")           # a TraceNode
        edge, inputs = tree.via[0]
        assert (edge.name, inputs[0].identifier) == ("copy", "s3://raw/a.csv")
        print(tree.to_dict())
    """

    identifier: str
    via: tuple[tuple[LineageEdge, tuple[TraceNode, ...]], ...] = ()
    seen: bool = False
    """True when the identifier was already expanded higher up (the tree is cut here)."""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready nested form."""
        out: dict[str, object] = {"id": self.identifier}
        if self.seen:
            out["seen"] = True
        if self.via:
            out["produced_by"] = [
                {
                    "edge": edge.id,
                    "step": edge.name,
                    "code_version": edge.code_version,
                    "tenant": edge.tenant,
                    "inputs": [child.to_dict() for child in children],
                }
                for edge, children in self.via
            ]
        return out


class LineageGraph:
    """An in-memory lineage graph. Add edges; duplicates (same id) are ignored.

    Example::

        import flowtrace as ft
        from flowtrace import lineage
        from flowtrace.testing import Capture

        with Capture() as capture, ft.context(tenant="acme"):
            lineage.record("copy", inputs="s3://raw/a.csv", outputs="s3://clean/a.csv")

        graph = lineage.LineageGraph(lineage.read_edges(capture.spans()))
        assert graph.upstream("s3://clean/a.csv") == ["s3://raw/a.csv"]
        assert graph.downstream("s3://raw/a.csv") == ["s3://clean/a.csv"]
    """

    def __init__(self, edges: Iterable[LineageEdge] = ()) -> None:
        self._edges: list[LineageEdge] = []
        self._edge_index: dict[str, int] = {}
        self._node_index: dict[str, int] = {}
        self._nodes: list[str] = []
        self._inputs: list[tuple[int, ...]] = []
        self._outputs: list[tuple[int, ...]] = []
        self._tenants: list[str | None] = []
        # Indexed by node int: the edges producing / consuming it (None: no edge).
        self._produced_by: list[list[int] | None] = []
        self._consumed_by: list[list[int] | None] = []
        # Sparse, edges with lineage parents only. _parent_edges[e]: e's parents present in
        # the graph, in edge.parents order; _child_edges[e]: the edges naming e as a parent,
        # in the order they were added; _waiting[id]: those naming an id not added yet.
        self._parent_edges: dict[int, list[int]] = {}
        self._child_edges: dict[int, list[int]] = {}
        self._waiting: dict[str, list[int]] = {}
        self._by_subject: dict[str, list[int]] = {}
        self.duplicates = 0
        """How many edges were ignored because their id was already present."""
        self.add_all(edges)

    # --- building -------------------------------------------------------------------------

    def _node(self, identifier: str) -> int:
        index = self._node_index.get(identifier)
        if index is None:
            index = self._node_index[identifier] = len(self._nodes)
            self._nodes.append(identifier)
            self._produced_by.append(None)
            self._consumed_by.append(None)
        return index

    def add(self, edge: LineageEdge) -> bool:
        """Add ``edge``; returns False (and counts it) if an edge with its id is present."""
        if edge.id in self._edge_index:
            self.duplicates += 1
            return False
        e = len(self._edges)
        self._edge_index[edge.id] = e
        self._edges.append(edge)
        node = self._node
        ins = tuple(node(i) for i in edge.inputs)
        outs = tuple(node(o) for o in edge.outputs)
        self._inputs.append(ins)
        self._outputs.append(outs)
        self._tenants.append(edge.tenant)
        produced_by, consumed_by = self._produced_by, self._consumed_by
        for o in outs:
            edges = produced_by[o]
            if edges is None:
                produced_by[o] = [e]
            else:
                edges.append(e)
        for i in ins:
            edges = consumed_by[i]
            if edges is None:
                consumed_by[i] = [e]
            else:
                edges.append(e)
        if self._waiting:
            children = self._waiting.pop(edge.id, None)
            if children is not None:  # edges added earlier that name this one as a parent
                self._child_edges[e] = children
                for child in dict.fromkeys(children):
                    self._link_parents(child)
        if edge.parents:
            edge_index, child_edges, waiting = self._edge_index, self._child_edges, self._waiting
            for p in edge.parents:
                parent = edge_index.get(p)
                if parent is None:
                    waiting.setdefault(p, []).append(e)
                else:
                    child_edges.setdefault(parent, []).append(e)
            self._link_parents(e)
        for s in edge.subjects:
            self._by_subject.setdefault(s, []).append(e)
        return True

    def _link_parents(self, e: int) -> None:
        edge_index = self._edge_index
        parents = [edge_index[p] for p in self._edges[e].parents if p in edge_index]
        if parents:
            self._parent_edges[e] = parents

    def add_all(self, edges: Iterable[LineageEdge]) -> int:
        """Add many edges; returns how many were new."""
        return sum(1 for edge in edges if self.add(edge))

    @classmethod
    def load(cls, path: str) -> LineageGraph:
        """Build from a file or buffer directory (JSON lines, OTLP JSON); see ``_readers``."""
        from ._readers import read_edges

        return cls(read_edges(path))

    # --- reading --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._edges)

    def __iter__(self) -> Iterator[LineageEdge]:
        return iter(self._edges)

    def __contains__(self, identifier: object) -> bool:
        return identifier in self._node_index or identifier in self._edge_index

    def edge(self, edge_id: str) -> LineageEdge:
        """The edge with this lineage id; raises :class:`LineageError` if unknown."""
        index = self._edge_index.get(edge_id)
        if index is None:
            raise LineageError(f"no lineage edge with id {edge_id!r} in this graph")
        return self._edges[index]

    def producers(self, identifier: str) -> list[LineageEdge]:
        """The edges that output ``identifier``."""
        node = self._node_index.get(identifier)
        if node is None:
            return []
        return [self._edges[e] for e in self._produced_by[node] or ()]

    def _start(self, identifier: str, index: list[list[int] | None]) -> tuple[list[int], list[int]]:
        node = self._node_index.get(identifier)
        if node is not None:
            return list(index[node] or ()), [node]
        e = self._edge_index.get(identifier)
        if e is not None:
            return [e], []
        raise LineageError(
            f"{identifier!r} is neither a data identifier nor an edge id in this graph"
        )

    def upstream(self, identifier: str, *, tenant: str | None = None) -> list[str]:
        """Every identifier ``identifier`` (an identifier or edge id) was derived from.

        Nearest first (breadth-first). ``tenant`` restricts the walk to that tenant's edges.
        """
        frontier, start = self._start(identifier, self._produced_by)
        return self._walk(
            frontier, start, tenant, self._inputs, self._produced_by, self._parent_edges
        )

    def sources(self, identifier: str, *, tenant: str | None = None) -> list[str]:
        """The upstream identifiers that no edge produced: the original source records."""
        return [
            i
            for i in self.upstream(identifier, tenant=tenant)
            if not self._produced_by[self._node_index[i]]
        ]

    def downstream(self, identifier: str, *, tenant: str | None = None) -> list[str]:
        """Every identifier derived from ``identifier`` (an identifier or edge id)."""
        frontier, start = self._start(identifier, self._consumed_by)
        return self._walk(
            frontier, start, tenant, self._outputs, self._consumed_by, self._child_edges
        )

    def _walk(
        self,
        frontier: list[int],
        start: list[int],
        tenant: str | None,
        ends: list[tuple[int, ...]],
        via: list[list[int] | None],
        links: dict[int, list[int]],
    ) -> list[str]:
        """Breadth-first from the ``frontier`` edges: each edge's ``ends`` (its inputs, or its
        outputs), the ``via`` edges of those nodes (their producers, or consumers), and the
        ``links`` edges (lineage parents, or children). Returns the nodes reached in order."""
        tenants = self._tenants
        seen_edges = bytearray(len(self._edges))
        seen_nodes = bytearray(len(self._nodes))
        for n in start:
            seen_nodes[n] = 1
        out: list[int] = []
        add = out.append
        while frontier:
            next_frontier: list[int] = []
            extend = next_frontier.extend
            for e in frontier:
                if seen_edges[e]:
                    continue
                seen_edges[e] = 1
                if tenant is not None and tenants[e] != tenant:
                    continue
                for n in ends[e]:
                    if not seen_nodes[n]:
                        seen_nodes[n] = 1
                        add(n)
                        edges = via[n]
                        if edges is not None:
                            extend(edges)
                if links:
                    linked = links.get(e)
                    if linked is not None:
                        extend(linked)
            frontier = next_frontier
        return list(map(self._nodes.__getitem__, out))

    def derived_from(
        self,
        subject: str,
        *,
        tenant: str,
        pseudonymizer: Pseudonymizer | None = None,
    ) -> list[str]:
        """Everything recorded about ``subject`` in ``tenant``, and everything derived from it.

        For access requests and erasure checklists: the inputs and outputs of every edge
        that named the subject, then everything downstream of those outputs (same tenant).
        ``subject`` is the raw subject (pseudonymised with ``pseudonymizer`` or the
        configured one) or an ``sp1:`` pseudonym.
        """
        if not is_pseudonym(subject):
            if pseudonymizer is None:
                from ._runtime import lineage_config

                pseudonymizer = lineage_config().pseudonymizer
            from ._pseudonym import require_pseudonymizer

            subject = require_pseudonymizer(pseudonymizer).pseudonym(subject, tenant)
        start = [e for e in self._by_subject.get(subject, ()) if self._tenants[e] == tenant]
        seen: dict[int, None] = {}
        for e in start:
            for i in self._inputs[e]:
                seen.setdefault(i, None)
        out = dict.fromkeys(self._nodes[i] for i in seen)
        # The inputs are not "start" nodes of the walk: an input that an edge also outputs
        # is downstream of that output and must be expanded (LineageStore agrees).
        out.update(
            dict.fromkeys(
                self._walk(start, [], tenant, self._outputs, self._consumed_by, self._child_edges)
            )
        )
        return list(out)

    def trace(
        self, identifier: str, *, tenant: str | None = None, max_depth: int = 64
    ) -> TraceNode:
        """The upstream tree of ``identifier``: which edges made it, from which inputs."""
        expanded: set[str] = set()

        def build(ident: str, depth: int) -> TraceNode:
            if ident in expanded:
                return TraceNode(ident, seen=True)
            expanded.add(ident)
            if depth >= max_depth:
                return TraceNode(ident)
            via = []
            edges = self.producers(ident)
            if not edges and ident in self._edge_index:
                edges = [self._edges[self._edge_index[ident]]]
            for edge in edges:
                if tenant is not None and edge.tenant != tenant:
                    continue
                children = [build(i, depth + 1) for i in edge.inputs]
                for parent in edge.parents:
                    if parent in self._edge_index:
                        children.append(build(parent, depth + 1))
                via.append((edge, tuple(children)))
            return TraceNode(ident, tuple(via))

        if identifier not in self:
            raise LineageError(
                f"{identifier!r} is neither a data identifier nor an edge id in this graph"
            )
        return build(identifier, 0)
