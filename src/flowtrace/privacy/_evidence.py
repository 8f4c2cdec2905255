"""What the evidence says about one data subject: where their data went, what was derived
from it, who read it.

Spans carry the subject as a keyed per-tenant pseudonym (``flowtrace.subject``), lineage
edges as ``flowtrace.lineage.subjects``; the audit log names the subject as the
application recorded it. Nothing here needs the raw identifier to leave the process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import map as ftmap
from ..errors import LineageError, PrivacyError
from ..lineage import LineageGraph, Pseudonymizer, lineage_config, read_edges

__all__ = ["NodeEvidence", "SubjectEvidence", "gather", "pseudonym_of"]

SUBJECT_ATTRIBUTE = "flowtrace.subject"
LINEAGE_SUBJECTS = "flowtrace.lineage.subjects"
TENANT_ATTRIBUTE = "flowtrace.tenant"


def pseudonym_of(subject: str, tenant: str, pseudonymizer: Pseudonymizer | None = None) -> str:
    """The subject's pseudonym in ``tenant`` (the key configured for lineage by default).

    Example::

        import os

        from flowtrace import lineage, privacy

        p = lineage.Pseudonymizer(os.urandom(32))
        assert privacy.pseudonym_of("u-1", "acme", p) == p.pseudonym("u-1", "acme")
    """
    p = pseudonymizer or lineage_config().pseudonymizer
    if p is None:
        raise PrivacyError(
            "privacy operations find a subject in the evidence by its pseudonym, and no "
            "pseudonym key is configured; pass pseudonymizer=Pseudonymizer(key) or "
            "configure(lineage=LineageConfig(pseudonym_key=...))"
        )
    return p.pseudonym(subject, tenant)


@dataclass
class NodeEvidence:
    """A store, queue, processor or dataset that received the subject's data.

    Example::

        from flowtrace.privacy import NodeEvidence

        node = NodeEvidence("postgresql/app", "store", "eu", {"pii"}, ["6a8b10fb..."])
        assert node.to_dict()["sample_traces"] == ["6a8b10fb..."]
    """

    node: str
    kind: str
    region: str | None = None
    categories: set[str] = field(default_factory=set)
    traces: list[str] = field(default_factory=list)
    """Sample trace ids that show the data arriving."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "kind": self.kind,
            "region": self.region,
            "categories": sorted(self.categories),
            "sample_traces": list(self.traces),
        }


@dataclass
class SubjectEvidence:
    """Everything the evidence shows about one subject in one tenant (see :func:`gather`).

    Example::

        from flowtrace.privacy import SubjectEvidence

        evidence = SubjectEvidence(tenant="acme", pseudonym="sp1:" + "0" * 32)
        assert evidence.to_dict()["recipients"] == []
    """

    tenant: str
    pseudonym: str
    nodes: dict[str, NodeEvidence] = field(default_factory=dict)
    derived: list[str] = field(default_factory=list)
    """Lineage identifiers recorded about the subject and everything derived from them."""
    accesses: list[dict[str, Any]] = field(default_factory=list)
    """Audit events naming the subject, oldest first."""
    sources: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "subject_pseudonym": self.pseudonym,
            "sources": list(self.sources),
            "recipients": [self.nodes[k].to_dict() for k in sorted(self.nodes)],
            "derived": list(self.derived),
            "accesses": list(self.accesses),
        }


def _is_subjects(attrs: Any, pseudonym: str, tenant: str) -> bool:
    if attrs.get(TENANT_ATTRIBUTE) not in (tenant, None):
        return False
    if attrs.get(SUBJECT_ATTRIBUTE) == pseudonym:
        return True
    subjects = attrs.get(LINEAGE_SUBJECTS)
    return bool(subjects) and pseudonym in subjects


def gather(
    subject: str,
    *,
    tenant: str,
    sources: Iterable[str | Path] = (),
    spans: Iterable[Any] = (),
    audit: Any = None,
    pseudonymizer: Pseudonymizer | None = None,
    samples: int = 3,
) -> SubjectEvidence:
    """Collect the evidence about ``subject``: the map's flows of spans carrying the
    subject's pseudonym (span files / OTLP files / lineage buffers in ``sources``, SDK
    ``spans``), lineage ``derived_from`` (transitive), and audit events (``audit``: a log
    path or sink).

    Example::

        import os

        import flowtrace as ft
        from flowtrace import lineage, privacy
        from flowtrace.testing import Capture

        p = lineage.Pseudonymizer(os.urandom(32))
        ft.configure(lineage=lineage.LineageConfig(pseudonymizer=p))
        with Capture() as capture, ft.context(tenant="acme", subject="u-1"):
            lineage.record("rollup", inputs="pg://app/orders#7", outputs="pg://app/daily",
                           subjects=["u-1"])
        evidence = privacy.gather("u-1", tenant="acme", spans=capture.spans())
        assert evidence.derived == ["pg://app/orders#7", "pg://app/daily"]
        ft.configure()
    """
    pseudonym = pseudonym_of(subject, tenant, pseudonymizer)
    evidence = SubjectEvidence(tenant=tenant, pseudonym=pseudonym)
    observed = ftmap.ObservedMap(samples=samples)
    spans = list(spans)
    graph = LineageGraph()

    def keep(stream: Iterable[ftmap.SpanTuple]) -> Iterable[ftmap.SpanTuple]:
        for span in stream:
            if _is_subjects(span[3], pseudonym, tenant):
                yield span

    for source in sources:
        evidence.sources.append(str(source))
        observed.add_all(keep(ftmap.read_source(source)))
        if Path(source).is_dir() or str(source).endswith(".jsonl"):
            # A span file without lineage edges is still evidence of flows.
            with contextlib.suppress(LineageError):
                graph.add_all(read_edges(source))
    if spans:
        evidence.sources.append(f"{len(spans)} in-process spans")
        observed.add_all(keep(ftmap.spans_from_sdk(spans)))
        graph.add_all(read_edges(spans))

    for flow in observed.flows.values():
        node = observed.nodes[flow.destination]
        if node.kind == "service":
            continue
        item = evidence.nodes.setdefault(node.id, NodeEvidence(node.id, node.kind, node.region))
        item.categories.update(flow.categories)
        for trace_id, _ in flow.samples():
            if trace_id not in item.traces and len(item.traces) < samples:
                item.traces.append(trace_id)
    evidence.derived = graph.derived_from(pseudonym, tenant=tenant)
    if audit is not None:
        from ..audit import query

        evidence.sources.append(str(audit))
        evidence.accesses = [
            {**e.to_dict(), "seq": e.sequence} for e in query(audit, subject=subject, tenant=tenant)
        ]
    return evidence
