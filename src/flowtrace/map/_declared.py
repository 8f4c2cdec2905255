"""The declared map: what the system is *supposed* to do, read from TOML or YAML.

Validation is ours, not a schema library's, so every error names the file and the exact
key (``flows[2].purposes``) and says what to write instead. Unknown keys are refused: a
typo such as ``purpose =`` for ``purposes =`` must not silently declare nothing.
The same rules are published as a JSON Schema in docs/spec/map.schema.json.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..classify import Category
from ..errors import DeclaredMapError
from . import _names as n

__all__ = ["DeclaredFlow", "DeclaredMap", "DeclaredNode", "load_declared", "parse_declared"]

FORMAT_VERSION = 1
SENSITIVE_DEFAULT = frozenset(str(c) for c in Category)
"""Every classify category is confidential or restricted (classify.Classification.parse)."""

_NODE_SECTIONS = {
    "services": n.SERVICE,
    "stores": n.STORE,
    "queues": n.QUEUE,
    "processors": n.EXTERNAL,
    "datasets": n.DATASET,
}
_NODE_KEYS = {"name", "region", "retention", "dpa", "description", "owner"}
_FLOW_KEYS = {"from", "to", "categories", "purposes", "legal_bases", "retention", "description"}
_TOP_KEYS = {"version", "regions", "encryption", "categories", *_NODE_SECTIONS, "flows"}


@dataclass(frozen=True)
class DeclaredNode:
    """A declared system (service, store, queue, processor or dataset) and its region.

    Example::

        from flowtrace import map as ftmap

        declared = ftmap.parse_declared({
            "version": 1,
            "regions": {"eu": {"may_flow_to": ["eu"]}},
            "services": [{"name": "shop", "region": "eu"}],
            "processors": [{"name": "api.stripe.com", "region": "us", "dpa": "DPA-2024-07"}],
            "flows": [{"from": "shop", "to": "api.stripe.com", "categories": ["pci"],
                       "purposes": ["payment"], "legal_bases": ["contract"]}],
        })
        node = declared.nodes["api.stripe.com"]
        assert (node.kind, node.region, node.dpa) == ("external", "us", "DPA-2024-07")
    """

    name: str
    kind: str
    region: str | None = None
    retention: str | None = None
    dpa: str | None = None
    """Data processing agreement reference (required for processors)."""


@dataclass(frozen=True)
class DeclaredFlow:
    """A declared flow: which categories may go from ``source`` to ``destination``, why.

    Example::

        from flowtrace import map as ftmap

        declared = ftmap.parse_declared({
            "version": 1,
            "regions": {"eu": {"may_flow_to": ["eu"]}},
            "services": [{"name": "shop", "region": "eu"}],
            "processors": [{"name": "api.stripe.com", "region": "us", "dpa": "DPA-2024-07"}],
            "flows": [{"from": "shop", "to": "api.stripe.com", "categories": ["pci"],
                       "purposes": ["payment"], "legal_bases": ["contract"]}],
        })
        flow = declared.flows[("shop", "api.stripe.com")]
        assert flow.categories == {"pci"} and flow.legal_bases == {"contract"}
    """

    source: str
    destination: str
    categories: frozenset[str] = frozenset()
    purposes: frozenset[str] = frozenset()
    legal_bases: frozenset[str] = frozenset()
    retention: str | None = None


@dataclass(frozen=True)
class DeclaredMap:
    """A validated declared map. Build with :func:`load_declared` or :func:`parse_declared`.

    Example::

        from flowtrace import map as ftmap

        declared = ftmap.parse_declared({
            "version": 1,
            "regions": {"eu": {"may_flow_to": ["eu"]}},
            "services": [{"name": "shop", "region": "eu"}],
            "processors": [{"name": "api.stripe.com", "region": "us", "dpa": "DPA-2024-07"}],
            "flows": [{"from": "shop", "to": "api.stripe.com", "categories": ["pci"],
                       "purposes": ["payment"], "legal_bases": ["contract"]}],
        })
        assert declared.regions["eu"] == {"eu"}
        assert declared.region_of("shop") == "eu" and declared.region_of("nowhere") is None
    """

    nodes: Mapping[str, DeclaredNode] = field(default_factory=dict)
    flows: Mapping[tuple[str, str], DeclaredFlow] = field(default_factory=dict)
    regions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Data region -> destination regions its data may reach (absent: unrestricted)."""
    encrypt_at_rest: frozenset[str] = frozenset()
    encrypt_in_transit: frozenset[str] = frozenset()
    sensitive: frozenset[str] = SENSITIVE_DEFAULT
    origin: str = "<declared map>"

    def apply_regions(self, observed: Any) -> None:
        """Give observed nodes whose region is unknown their declared region."""
        for node in observed.nodes.values():
            declared = self.nodes.get(node.id)
            if node.region is None and declared is not None and declared.region:
                node.region = declared.region

    def region_of(self, name: str) -> str | None:
        node = self.nodes.get(name)
        return node.region if node is not None else None


class _Reader:
    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, key: str, problem: str) -> DeclaredMapError:
        return DeclaredMapError(f"{self.origin}: {key} {problem}")

    def table(self, value: Any, key: str, allowed: set[str] | None = None) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be a table (mapping), got {type(value).__name__}")
        if allowed is not None:
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise self.fail(
                    f"{key}.{unknown[0]}" if key else unknown[0],
                    f"is not a known key; known keys here: {', '.join(sorted(allowed))}",
                )
        return value

    def text(self, value: Any, key: str, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                raise self.fail(key, "is required (a non-empty string)")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        return value

    def name(self, value: Any, key: str) -> str:
        text = self.text(value, key, required=True)
        if text is None:  # pragma: no cover - text(required=True) raised already
            raise self.fail(key, "is required")
        return text

    def strings(self, value: Any, key: str) -> frozenset[str]:
        if value is None:
            return frozenset()
        if isinstance(value, str) or not isinstance(value, list):
            raise self.fail(key, f'must be a list of strings, e.g. ["pii"]; got {value!r}')
        for item in value:
            if not isinstance(item, str) or not item:
                raise self.fail(key, f"must hold non-empty strings; got {item!r}")
        return frozenset(value)

    def array(self, value: Any, key: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, "must be an array of tables ([[" + key + "]] in TOML)")
        return value


def parse_declared(data: Any, origin: str = "<declared map>") -> DeclaredMap:
    """Validate a parsed document (dict) and build the :class:`DeclaredMap`.

    Errors raise :class:`~flowtrace.errors.DeclaredMapError` naming the exact key.

    Example::

        from flowtrace import map as ftmap
        from flowtrace.errors import DeclaredMapError

        declared = ftmap.parse_declared(
            {"version": 1, "services": [{"name": "shop"}], "stores": [{"name": "postgresql/shop"}],
             "flows": [{"from": "shop", "to": "postgresql/shop", "categories": ["pii"]}]},
            origin="inline",
        )
        assert ("shop", "postgresql/shop") in declared.flows
        try:
            ftmap.parse_declared({"version": 1, "flows": [{"from": "a", "to": "b", "purpose": []}]})
        except DeclaredMapError as exc:
            print(exc)                                   # <declared map>: flows[0].purpose ...
    """
    r = _Reader(origin)
    doc = r.table(data, "", _TOP_KEYS)
    version = doc.get("version")
    if version != FORMAT_VERSION:
        raise r.fail("version", f"must be {FORMAT_VERSION} (the declared-map format version)")

    regions: dict[str, frozenset[str]] = {}
    for name, rule in r.table(doc.get("regions", {}), "regions").items():
        rule = r.table(rule, f"regions.{name}", {"may_flow_to"})
        if "may_flow_to" not in rule:
            raise r.fail(f"regions.{name}.may_flow_to", 'is required, e.g. ["eu"]')
        regions[name] = r.strings(rule["may_flow_to"], f"regions.{name}.may_flow_to")

    enc = r.table(doc.get("encryption", {}), "encryption", {"at_rest", "in_transit"})
    cats = r.table(doc.get("categories", {}), "categories", {"sensitive"})
    sensitive = (
        r.strings(cats["sensitive"], "categories.sensitive")
        if "sensitive" in cats
        else SENSITIVE_DEFAULT
    )

    nodes: dict[str, DeclaredNode] = {}
    for section, kind in _NODE_SECTIONS.items():
        for index, item in enumerate(r.array(doc.get(section), section)):
            key = f"{section}[{index}]"
            item = r.table(item, key, _NODE_KEYS)
            node_name = r.name(item.get("name"), f"{key}.name")
            if node_name in nodes:
                raise r.fail(f"{key}.name", f"{node_name!r} is declared twice")
            region = r.text(item.get("region"), f"{key}.region")
            dpa = r.text(item.get("dpa"), f"{key}.dpa", required=kind == n.EXTERNAL)
            nodes[node_name] = DeclaredNode(
                node_name, kind, region, r.text(item.get("retention"), f"{key}.retention"), dpa
            )

    flows: dict[tuple[str, str], DeclaredFlow] = {}
    for index, item in enumerate(r.array(doc.get("flows"), "flows")):
        key = f"flows[{index}]"
        item = r.table(item, key, _FLOW_KEYS)
        source = r.name(item.get("from"), f"{key}.from")
        destination = r.name(item.get("to"), f"{key}.to")
        for end, value in (("from", source), ("to", destination)):
            if value not in nodes:
                raise r.fail(
                    f"{key}.{end}",
                    f"names {value!r}, which is not declared under services, stores, queues, "
                    "processors or datasets",
                )
        if (source, destination) in flows:
            raise r.fail(key, f"declares {source} -> {destination} twice; merge the two")
        flows[(source, destination)] = DeclaredFlow(
            source,
            destination,
            r.strings(item.get("categories"), f"{key}.categories"),
            r.strings(item.get("purposes"), f"{key}.purposes"),
            r.strings(item.get("legal_bases"), f"{key}.legal_bases"),
            r.text(item.get("retention"), f"{key}.retention"),
        )
    return DeclaredMap(
        nodes=nodes,
        flows=flows,
        regions=regions,
        encrypt_at_rest=r.strings(enc.get("at_rest"), "encryption.at_rest"),
        encrypt_in_transit=r.strings(enc.get("in_transit"), "encryption.in_transit"),
        sensitive=sensitive,
        origin=origin,
    )


def load_declared(path: str | Path) -> DeclaredMap:
    """Read a declared map from ``.toml`` or ``.yaml``/``.yml`` (needs ``flowtrace[yaml]``).

    Example::

        from pathlib import Path

        from flowtrace import map as ftmap

        Path("map.toml").write_text('''
        version = 1
        [regions.eu]
        may_flow_to = ["eu"]
        [[services]]
        name = "shop"
        region = "eu"
        [[queues]]
        name = "rabbitmq/orders"
        region = "eu"
        [[flows]]
        from = "shop"
        to = "rabbitmq/orders"
        categories = ["pii"]
        purposes = ["fulfilment"]
        ''')
        declared = ftmap.load_declared("map.toml")
        assert declared.origin == "map.toml" and len(declared.flows) == 1
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DeclaredMapError(f"declared map {p} cannot be read: {exc.strerror}") from None
    suffix = p.suffix.lower()
    if suffix == ".toml":
        try:
            data: Any = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise DeclaredMapError(f"{p}: not valid TOML: {exc}") from None
    elif suffix in (".yaml", ".yml"):
        from ..errors import require_extra

        yaml: Any = require_extra("yaml", "yaml", "reading a YAML declared map")
        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise DeclaredMapError(f"{p}: not valid YAML: {exc}") from None
    else:
        raise DeclaredMapError(f"{p}: a declared map is a .toml, .yaml or .yml file")
    return parse_declared(data, str(p))
