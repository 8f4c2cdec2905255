"""Answer "which systems process REGION personal data, and does any of it leave REGION?"
from the observed map (with the declared map's regions when given), with evidence."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._declared import SENSITIVE_DEFAULT, DeclaredMap
from ._observed import Flow, ObservedMap

__all__ = ["RegionAnswer", "region_answer"]


@dataclass
class RegionAnswer:
    """Which systems processed a region's personal data, and where it went outside it.

    Example::

        from flowtrace import map as ftmap

        attrs = {"http.request.method": "POST", "server.address": "psp.example",
                 "flowtrace.data.categories": ["pci"], "flowtrace.region": "eu",
                 "flowtrace.destination.region": "us"}
        observed = ftmap.ObservedMap().add_all(
            [("t1", "s1", "CLIENT", attrs, {"service.name": "shop"}, 0)]
        )
        answer = ftmap.region_answer(observed, "eu")
        assert answer.leaves and answer.leaving[0][1] == "us"
        for line in answer.lines():
            print(line)                              # "LEAVES eu: shop -> psp.example ..."
    """

    region: str
    systems: list[str] = field(default_factory=list)
    """Nodes that processed sensitive data whose flow-context region is ``region``."""
    leaving: list[tuple[Flow, str]] = field(default_factory=list)
    """Flows of that data to a destination in another region: (flow, destination region)."""
    unknown: list[Flow] = field(default_factory=list)
    """Flows of that data to a destination whose region nobody declared or observed."""
    foreign: list[tuple[str, str]] = field(default_factory=list)
    """(system, its region) of systems in another region that processed that data."""

    @property
    def leaves(self) -> bool:
        """True when the evidence shows the data outside its region."""
        return bool(self.leaving or self.foreign)

    def lines(self) -> list[str]:
        out = [
            f"systems processing {self.region} personal data: "
            + (", ".join(self.systems) or "none")
        ]
        if not self.leaves:
            out.append(f"no {self.region} personal data left {self.region} in this evidence")
        for system, where in self.foreign:
            out.append(
                f"LEAVES {self.region}: {system} is in region {where} and processed "
                f"{self.region} personal data"
            )
        for flow, where in self.leaving:
            trace_id, span_id = (flow.samples(f"region:{self.region}") or [("?", "?")])[0]
            out.append(
                f"LEAVES {self.region}: {flow.source} -> {flow.destination} (region {where}), "
                f"{', '.join(sorted(flow.categories))}; evidence trace {trace_id} span {span_id}"
            )
        for flow in self.unknown:
            out.append(f"region unknown for {flow.destination} (from {flow.source}): declare it")
        return out


def region_answer(
    observed: ObservedMap, region: str, declared: DeclaredMap | None = None
) -> RegionAnswer:
    """Answer "which systems process ``region`` personal data, and does any leave it?".

    Regions of the systems come from ``declared`` first, then from the evidence.

    Example::

        from flowtrace import map as ftmap

        attrs = {"db.system": "postgresql", "db.namespace": "shop",
                 "flowtrace.data.categories": ["pii"], "flowtrace.region": "eu"}
        observed = ftmap.ObservedMap().add_all(
            [("t1", "s1", "CLIENT", attrs, {"service.name": "orders"}, 0)]
        )
        declared = ftmap.parse_declared({"version": 1, "services": [{"name": "orders",
            "region": "eu"}], "stores": [{"name": "postgresql/shop", "region": "eu"}]})
        answer = ftmap.region_answer(observed, "eu", declared)
        assert answer.systems == ["orders", "postgresql/shop"] and not answer.leaves
    """
    sensitive = declared.sensitive if declared is not None else SENSITIVE_DEFAULT
    answer = RegionAnswer(region)
    answer.systems = sorted(
        node.id
        for node in observed.nodes.values()
        if region in node.data_regions and node.categories & sensitive
    )
    for system in answer.systems:
        where = (declared.region_of(system) if declared else None) or observed.nodes[system].region
        if where is not None and where != region:
            answer.foreign.append((system, where))
    for key in sorted(observed.flows):
        flow = observed.flows[key]
        if region not in flow.data_regions or not flow.categories & sensitive:
            continue
        target = observed.nodes.get(flow.destination)
        where = (declared.region_of(flow.destination) if declared else None) or (
            target.region if target else None
        )
        if where is None:
            answer.unknown.append(flow)
        elif where != region:
            answer.leaving.append((flow, where))
    return answer
