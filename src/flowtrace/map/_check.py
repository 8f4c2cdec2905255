"""Drift between the observed and the declared map, as findings that carry their evidence.

Each :class:`Finding` names the flow (or node), the rule it broke, and sample
``(trace_id, span_id)`` pairs of spans that showed it. Its ``fingerprint`` is stable across
runs (no ids, no counts), so a baseline file can accept known findings while CI adopts
the check gradually.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import DeclaredMapError, MapCheckError
from . import _names as n
from ._declared import DeclaredMap
from ._observed import MISSING, Flow, ObservedMap

__all__ = [
    "RULES",
    "CheckReport",
    "Finding",
    "assert_matches",
    "check",
    "load_baseline",
    "write_baseline",
]

Severity = Literal["error", "warning"]

RULES = {
    "undeclared-flow": "an observed flow carrying sensitive categories is not declared",
    "undeclared-flow-unclassified": "an observed flow without sensitive data is not declared",
    "undeclared-category": "a declared flow carried a sensitive category it does not declare",
    "residency": "data reached a destination whose region its own region forbids",
    "undeclared-processor": "an external processor is not declared (no DPA on record)",
    "missing-purpose": "sensitive data was processed without a purpose in the flow context",
    "undeclared-purpose": "a flow served a purpose its declaration does not list",
    "missing-legal-basis": "sensitive data was processed without a legal basis",
    "undeclared-legal-basis": "a flow used a legal basis its declaration does not list",
    "plaintext-at-rest": "a category that must be encrypted at rest reached a store in plaintext",
    "plaintext-in-transit": "a category that must be encrypted in transit travelled in plaintext",
    "stale-flow": "a declared flow was never observed",
}
"""Every rule :func:`check` applies: rule name -> what it means (docs/spec/map.md).

Example::

    from flowtrace import map as ftmap

    for rule, meaning in sorted(ftmap.RULES.items()):
        print(f"{rule:30} {meaning}")
    assert "residency" in ftmap.RULES
"""

BASELINE_VERSION = 1


@dataclass(frozen=True)
class Finding:
    """One drift between the observed and the declared map, with the spans that show it.

    ``rule`` is a key of :data:`RULES`; ``evidence`` holds ``(trace_id, span_id)`` pairs;
    ``fingerprint`` identifies the finding across runs (for baselines).

    Example::

        from flowtrace import map as ftmap

        declared = ftmap.parse_declared({
            "version": 1,
            "services": [{"name": "shop"}],
            "queues": [{"name": "rabbitmq/orders"}],
            "flows": [{"from": "shop", "to": "rabbitmq/orders", "categories": ["pii"],
                       "purposes": ["fulfilment"], "legal_bases": ["contract"]}],
        })
        attrs = {"messaging.system": "rabbitmq", "messaging.destination.name": "orders",
                 "flowtrace.data.categories": ["pii"], "flowtrace.purpose": "marketing",
                 "flowtrace.legal_basis": "contract"}
        observed = ftmap.ObservedMap().add_all(
            [("t1", "s1", "PRODUCER", attrs, {"service.name": "shop"}, 0)]
        )
        (finding,) = ftmap.check(observed, declared).findings
        assert finding.rule == "undeclared-purpose" and finding.detail == "marketing"
        assert finding.fingerprint == "undeclared-purpose:shop->rabbitmq/orders:marketing"
        assert finding.evidence == (("t1", "s1"),)
        print(finding)
    """

    rule: str
    severity: Severity
    message: str
    source: str | None = None
    destination: str | None = None
    detail: str = ""
    evidence: tuple[tuple[str, str], ...] = ()
    baselined: bool = False

    @property
    def fingerprint(self) -> str:
        """``rule:source->destination:detail``: stable across runs, used by baselines."""
        return f"{self.rule}:{self.source or ''}->{self.destination or ''}:{self.detail}"

    @property
    def trace_ids(self) -> list[str]:
        return list(dict.fromkeys(t for t, _ in self.evidence if t))

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "from": self.source,
            "to": self.destination,
            "detail": self.detail,
            "fingerprint": self.fingerprint,
            "baselined": self.baselined,
            "evidence": [{"trace_id": t, "span_id": s} for t, s in self.evidence],
        }

    def __str__(self) -> str:
        where = f" [{self.source} -> {self.destination}]" if self.source else ""
        ids = ", ".join(f"trace {t} span {s}" for t, s in self.evidence[:3])
        tag = " (baselined)" if self.baselined else ""
        return f"{self.severity}{tag}: {self.rule}{where}: {self.message}" + (
            f" — evidence: {ids}" if ids else ""
        )


@dataclass
class CheckReport:
    """The findings of :func:`check`; ``ok`` when no error is left outside the baseline.

    A failing report is shown under :func:`check`.

    Example::

        from flowtrace import map as ftmap

        report = ftmap.check(ftmap.ObservedMap(), ftmap.parse_declared({"version": 1}))
        assert report.ok and report.findings == []
        assert report.to_dict()["ok"] is True
    """

    findings: list[Finding] = field(default_factory=list)

    @property
    def failing(self) -> list[Finding]:
        """Errors not accepted by the baseline: any of them fails the check."""
        return [f for f in self.findings if f.severity == "error" and not f.baselined]

    @property
    def ok(self) -> bool:
        return not self.failing

    def to_dict(self) -> dict[str, Any]:
        return {
            "flowtrace_map_check": 1,
            "ok": self.ok,
            "findings": [f.to_dict() for f in self.findings],
        }


def _evidence(flow: Flow, *facets: str) -> tuple[tuple[str, str], ...]:
    for facet in (*facets, "any"):
        ids = flow.samples(facet)
        if ids:
            return tuple(ids)
    return ()


def _check_flow(
    flow: Flow, observed: ObservedMap, declared: DeclaredMap, out: list[Finding]
) -> None:
    src, dst = flow.source, flow.destination
    sensitive = sorted(flow.categories & declared.sensitive)
    spec = declared.flows.get((src, dst))
    if spec is None:
        if sensitive:
            out.append(
                Finding(
                    "undeclared-flow",
                    "error",
                    f"undeclared flow {src} -> {dst} carried {', '.join(sensitive)}; declare it "
                    "in [[flows]] or stop the flow",
                    src,
                    dst,
                    ",".join(sensitive),
                    _evidence(flow, *(f"category:{c}" for c in sensitive)),
                )
            )
        else:
            out.append(
                Finding(
                    "undeclared-flow-unclassified",
                    "warning",
                    f"undeclared flow {src} -> {dst} (no sensitive category seen)",
                    src,
                    dst,
                    "",
                    _evidence(flow),
                )
            )
    else:
        for category in sensitive:
            if category not in spec.categories:
                out.append(
                    Finding(
                        "undeclared-category",
                        "error",
                        f"{src} -> {dst} carried {category}, not in its declared categories "
                        f"({', '.join(sorted(spec.categories)) or 'none'})",
                        src,
                        dst,
                        category,
                        _evidence(flow, f"category:{category}"),
                    )
                )
    if sensitive:
        _check_purposes(flow, spec.purposes if spec else frozenset(), "purpose", out)
        _check_purposes(flow, spec.legal_bases if spec else frozenset(), "legal-basis", out)
    # residency: each data region's rule against the destination's region
    dest_node = observed.nodes.get(dst)
    dest_region = declared.region_of(dst) or (dest_node.region if dest_node else None)
    for region in sorted(flow.data_regions - {MISSING}):
        allowed = declared.regions.get(region)
        if allowed is None or dest_region is None or dest_region in allowed:
            continue
        out.append(
            Finding(
                "residency",
                "error",
                f"{region} data reached {dst} in region {dest_region}; {region} data may only "
                f"reach {', '.join(sorted(allowed))}",
                src,
                dst,
                f"{region}->{dest_region}",
                _evidence(flow, f"region:{region}"),
            )
        )
    dest_kind = (
        declared.nodes[dst].kind
        if dst in declared.nodes
        else (dest_node.kind if dest_node else None)
    )
    for category in sorted(flow.plaintext):
        if dest_kind == n.STORE and category in declared.encrypt_at_rest:
            out.append(
                Finding(
                    "plaintext-at-rest",
                    "error",
                    f"{category} reached store {dst} in plaintext; the declaration requires it "
                    "encrypted at rest (flowtrace.crypto.FieldEncryptor)",
                    src,
                    dst,
                    category,
                    _evidence(flow, f"plaintext:{category}"),
                )
            )
        if category in declared.encrypt_in_transit:
            out.append(
                Finding(
                    "plaintext-in-transit",
                    "error",
                    f"{category} travelled {src} -> {dst} in plaintext; the declaration requires "
                    "it encrypted in transit",
                    src,
                    dst,
                    category,
                    _evidence(flow, f"plaintext:{category}"),
                )
            )


def _check_purposes(
    flow: Flow, declared_values: frozenset[str], what: str, out: list[Finding]
) -> None:
    seen = flow.purposes if what == "purpose" else flow.legal_bases
    facet = "purpose" if what == "purpose" else "legal_basis"
    label = what.replace("-", " ")
    src, dst = flow.source, flow.destination
    if MISSING in seen:
        out.append(
            Finding(
                f"missing-{what}",
                "error",
                f"{src} -> {dst} carried sensitive data with no {label} in the flow context; "
                f"set it with flowtrace.context({facet}=...)",
                src,
                dst,
                "",
                _evidence(flow, f"{facet}:{MISSING}"),
            )
        )
    if declared_values:
        for value in sorted(seen - declared_values - {MISSING}):
            out.append(
                Finding(
                    f"undeclared-{what}",
                    "error",
                    f"{src} -> {dst} served {label} {value!r}, declared: "
                    f"{', '.join(sorted(declared_values))}",
                    src,
                    dst,
                    value,
                    _evidence(flow, f"{facet}:{value}"),
                )
            )


def check(
    observed: ObservedMap,
    declared: DeclaredMap,
    *,
    baseline: Iterable[str] = (),
    stale: Severity = "warning",
) -> CheckReport:
    """Compare ``observed`` with ``declared``; findings accepted by ``baseline``
    (fingerprints) are kept but marked ``baselined`` and do not fail the report.

    ``stale`` is the severity of a declared flow never observed (``"error"`` in a CI job
    whose evidence covers every flow).

    Example::

        from flowtrace import map as ftmap

        declared = ftmap.parse_declared({
            "version": 1,
            "services": [{"name": "shop"}],
            "queues": [{"name": "rabbitmq/orders"}],
            "flows": [{"from": "shop", "to": "rabbitmq/orders", "categories": ["pii"],
                       "purposes": ["fulfilment"], "legal_bases": ["contract"]}],
        })
        attrs = {"messaging.system": "rabbitmq", "messaging.destination.name": "orders",
                 "flowtrace.data.categories": ["pii"], "flowtrace.purpose": "marketing",
                 "flowtrace.legal_basis": "contract"}
        observed = ftmap.ObservedMap().add_all(
            [("t1", "s1", "PRODUCER", attrs, {"service.name": "shop"}, 0)]
        )
        report = ftmap.check(observed, declared)
        assert not report.ok
        accepted = [f.fingerprint for f in report.findings]
        assert ftmap.check(observed, declared, baseline=accepted).ok
    """
    found: list[Finding] = []
    for key in sorted(observed.flows):
        _check_flow(observed.flows[key], observed, declared, found)
    for node in sorted(observed.nodes.values(), key=lambda x: x.id):
        if node.kind == n.EXTERNAL and node.id not in declared.nodes:
            flow = next(
                (f for f in observed.flows.values() if node.id in (f.source, f.destination)),
                None,
            )
            found.append(
                Finding(
                    "undeclared-processor",
                    "error",
                    f"external processor {node.id} is not declared; add it under [[processors]] "
                    "with its DPA reference",
                    None,
                    node.id,
                    "",
                    _evidence(flow) if flow else (),
                )
            )
    for key in sorted(declared.flows):
        if key not in observed.flows:
            found.append(
                Finding(
                    "stale-flow",
                    stale,
                    f"declared flow {key[0]} -> {key[1]} was not observed in these sources",
                    key[0],
                    key[1],
                )
            )
    accepted = set(baseline)
    return CheckReport(
        [
            Finding(**{**f.__dict__, "baselined": True}) if f.fingerprint in accepted else f
            for f in found
        ]
    )


def load_baseline(path: str | Path) -> list[str]:
    """Fingerprints accepted by a baseline file (written by :func:`write_baseline`).

    A missing or malformed file raises :class:`~flowtrace.errors.DeclaredMapError`.

    Example::

        import json
        from pathlib import Path

        from flowtrace import map as ftmap

        Path("map-baseline.json").write_text(json.dumps(
            {"flowtrace_map_baseline": 1,
             "accepted": ["undeclared-purpose:shop->rabbitmq/orders:marketing"]}
        ))
        assert ftmap.load_baseline("map-baseline.json") == [
            "undeclared-purpose:shop->rabbitmq/orders:marketing"
        ]
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DeclaredMapError(f"baseline {p} cannot be read: {exc}") from None
    if (
        not isinstance(data, dict)
        or data.get("flowtrace_map_baseline") != BASELINE_VERSION
        or not isinstance(data.get("accepted"), list)
        or not all(isinstance(x, str) for x in data["accepted"])
    ):
        raise DeclaredMapError(
            f'baseline {p} must be {{"flowtrace_map_baseline": 1, "accepted": [...]}}; '
            "write one with `flowtrace map check ... --write-baseline FILE`"
        )
    return list(data["accepted"])


def write_baseline(report: CheckReport, path: str | Path) -> int:
    """Accept every current error finding; returns how many were written.

    Example::

        from flowtrace import map as ftmap

        declared = ftmap.parse_declared({
            "version": 1,
            "services": [{"name": "shop"}],
            "queues": [{"name": "rabbitmq/orders"}],
            "flows": [{"from": "shop", "to": "rabbitmq/orders", "categories": ["pii"],
                       "purposes": ["fulfilment"], "legal_bases": ["contract"]}],
        })
        attrs = {"messaging.system": "rabbitmq", "messaging.destination.name": "orders",
                 "flowtrace.data.categories": ["pii"], "flowtrace.purpose": "marketing",
                 "flowtrace.legal_basis": "contract"}
        observed = ftmap.ObservedMap().add_all(
            [("t1", "s1", "PRODUCER", attrs, {"service.name": "shop"}, 0)]
        )
        report = ftmap.check(observed, declared)
        assert ftmap.write_baseline(report, "map-baseline.json") == 1
        accepted = ftmap.load_baseline("map-baseline.json")
        assert ftmap.check(observed, declared, baseline=accepted).ok
    """
    accepted = sorted({f.fingerprint for f in report.findings if f.severity == "error"})
    Path(path).write_text(
        json.dumps({"flowtrace_map_baseline": BASELINE_VERSION, "accepted": accepted}, indent=2)
        + "\n",
        encoding="utf-8",
    )
    return len(accepted)


def assert_matches(
    observed: ObservedMap,
    declared: DeclaredMap,
    *,
    baseline: Sequence[str] = (),
    stale: Severity = "warning",
) -> CheckReport:
    """pytest assertion: raise :class:`~flowtrace.errors.MapCheckError` (an
    ``AssertionError``) listing every failing finding with its evidence ids.

    Example::

        from flowtrace import map as ftmap
        from flowtrace.testing import Capture

        declared = ftmap.parse_declared({"version": 1, "services": [{"name": "shop"}]})

        def test_no_undeclared_flows():
            with Capture() as capture:
                pass                                 # exercise the code under test here
            ftmap.assert_matches(ftmap.build(spans=capture.spans()), declared)

        test_no_undeclared_flows()
    """
    report = check(observed, declared, baseline=baseline, stale=stale)
    if not report.ok:
        lines = "\n".join(f"  {f}" for f in report.failing)
        raise MapCheckError(
            f"observed data flows drift from {declared.origin} "
            f"({len(report.failing)} finding(s)):\n{lines}",
            report.failing,
        )
    return report
