"""The lineage edge: one run of one transformation, from inputs to outputs.

An edge is written three ways, all specified in docs/spec/lineage.md: as OTel span
attributes (:func:`edge_attributes` / :func:`edge_from_attributes`), as one JSON line in the
durable buffer (:meth:`LineageEdge.to_json` / :meth:`LineageEdge.from_json`), and as an
OpenLineage RunEvent (see :mod:`flowtrace.lineage._openlineage`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ..errors import LineageError
from ._ids import Granularity, granularity

__all__ = ["ATTR", "FORMAT_VERSION", "LineageEdge", "edge_attributes", "edge_from_attributes"]

FORMAT_VERSION: Final = 1
"""Version of the lineage edge format (``flowtrace.lineage.version``; docs/spec/lineage.md).

Example::

    from flowtrace.lineage import ATTR, FORMAT_VERSION, LineageEdge, edge_attributes

    edge = LineageEdge(id="e-1", name="copy", inputs=("a",), outputs=("b",))
    assert edge_attributes(edge)[ATTR.VERSION] == FORMAT_VERSION == 1
"""


class ATTR:
    """Span attribute names of a lineage edge (stable; see docs/spec/lineage.md).

    Example::

        from flowtrace.lineage import ATTR

        assert ATTR.INPUTS == "flowtrace.lineage.inputs"
        assert ATTR.TENANT == "flowtrace.tenant"
    """

    VERSION: Final = "flowtrace.lineage.version"
    ID: Final = "flowtrace.lineage.id"
    """Only for readers of foreign data: the id is normally the span context itself."""
    STEP: Final = "flowtrace.lineage.step"
    INPUTS: Final = "flowtrace.lineage.inputs"
    OUTPUTS: Final = "flowtrace.lineage.outputs"
    PARENTS: Final = "flowtrace.lineage.parents"
    CODE_VERSION: Final = "flowtrace.lineage.code_version"
    PARAMS: Final = "flowtrace.lineage.params"
    HASHES: Final = "flowtrace.lineage.hashes"
    SUBJECTS: Final = "flowtrace.lineage.subjects"
    SUBJECT_OMITTED: Final = "flowtrace.lineage.subject_omitted"
    STATUS: Final = "flowtrace.lineage.status"
    ERROR_TYPE: Final = "error.type"
    TENANT: Final = "flowtrace.tenant"


_ORDER: Final = {"dataset": 0, "record": 1, "field": 2}


# Built once: json.dumps with non-default options builds a new encoder on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_PRESORTED = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Mapping[str, Any], what: str) -> str:
    """Compact, key-sorted JSON; raises :class:`LineageError` for non-JSON values."""
    try:
        return _CANONICAL.encode(value)
    except (TypeError, ValueError) as exc:
        raise LineageError(f"lineage {what} must be JSON-serialisable: {exc}") from None


@dataclass(frozen=True, slots=True)
class LineageEdge:
    """One lineage edge. ``inputs``/``outputs`` are data identifiers, ``parents`` edge ids.

    Example::

        from flowtrace.lineage import LineageEdge, new_lineage_id

        edge = LineageEdge(
            id=new_lineage_id(), name="copy", inputs=("a.csv",), outputs=("b.csv",), tenant="acme"
        )
        assert LineageEdge.from_json(edge.to_json()) == edge
    """

    id: str
    name: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
    code_version: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    hashes: Mapping[str, str] = field(default_factory=dict)
    subjects: tuple[str, ...] = ()
    """Keyed pseudonyms (``sp1:...``) of the data subjects concerned, never raw values."""
    tenant: str | None = None
    status: Literal["ok", "error"] = "ok"
    error_type: str | None = None
    start_ns: int = 0
    end_ns: int = 0
    span_parent: str | None = None
    """16-hex span id of the span the edge span is a child of (placement in the trace)."""
    service: str | None = None
    subject_omitted: bool = False

    @property
    def granularity(self) -> Granularity:
        """The finest granularity among the outputs (or inputs when there are none)."""
        best: Granularity = "dataset"
        for identifier in self.outputs or self.inputs:
            g = granularity(identifier)
            if _ORDER[g] > _ORDER[best]:
                best = g
        return best

    def to_dict(self) -> dict[str, Any]:
        """The buffer/JSON-lines form (docs/spec/lineage.md); empty fields are left out."""
        out: dict[str, Any] = {}
        # Keys in sorted order, so the canonical encoding needs no re-sorting here.
        if self.code_version:
            out["code_version"] = self.code_version
        out["end"] = self.end_ns
        if self.error_type:
            out["error_type"] = self.error_type
        if self.hashes:
            out["hashes"] = dict(self.hashes)
        out["id"] = self.id
        if self.inputs:
            out["inputs"] = list(self.inputs)
        if self.outputs:
            out["outputs"] = list(self.outputs)
        if self.params:
            out["params"] = dict(self.params)
        if self.parents:
            out["parents"] = list(self.parents)
        if self.service:
            out["service"] = self.service
        if self.span_parent:
            out["span_parent"] = self.span_parent
        out["start"] = self.start_ns
        if self.status != "ok":
            out["status"] = self.status
        out["step"] = self.name
        if self.subject_omitted:
            out["subject_omitted"] = True
        if self.subjects:
            out["subjects"] = list(self.subjects)
        if self.tenant:
            out["tenant"] = self.tenant
        out["v"] = FORMAT_VERSION
        return out

    def to_json(self) -> str:
        """One line of JSON (no newline), keys sorted at every level."""
        if self.params or self.hashes:  # nested objects: sort them too
            return canonical_json(self.to_dict(), "edge")
        try:
            return _PRESORTED.encode(self.to_dict())  # to_dict inserts keys in sorted order
        except (TypeError, ValueError) as exc:
            raise LineageError(f"lineage edge is not JSON-serialisable: {exc}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LineageEdge:
        """Parse the buffer/JSON-lines form; raises :class:`LineageError` when malformed."""
        if not isinstance(data, Mapping):
            raise LineageError(f"a lineage edge must be a JSON object, got {type(data).__name__}")
        version = data.get("v")
        if version != FORMAT_VERSION:
            raise LineageError(
                f"lineage edge format version {version!r} is not supported (this flowtrace "
                f"reads version {FORMAT_VERSION}); upgrade flowtrace"
            )
        try:
            edge_id, name = data["id"], data["step"]
        except KeyError as exc:
            raise LineageError(f"lineage edge lacks the {exc.args[0]!r} field") from None
        if not isinstance(edge_id, str) or not isinstance(name, str):
            raise LineageError("lineage edge 'id' and 'step' must be strings")
        status = data.get("status", "ok")
        if status not in ("ok", "error"):
            raise LineageError(f"lineage edge status must be 'ok' or 'error', got {status!r}")
        return cls(
            id=edge_id,
            name=name,
            inputs=_strs(data, "inputs"),
            outputs=_strs(data, "outputs"),
            parents=_strs(data, "parents"),
            code_version=_opt(data, "code_version"),
            params=dict(data.get("params") or {}),
            hashes=dict(data.get("hashes") or {}),
            subjects=_strs(data, "subjects"),
            tenant=_opt(data, "tenant"),
            status=status,
            error_type=_opt(data, "error_type"),
            start_ns=int(data.get("start", 0)),
            end_ns=int(data.get("end", 0)),
            span_parent=_opt(data, "span_parent"),
            service=_opt(data, "service"),
            subject_omitted=bool(data.get("subject_omitted", False)),
        )

    @classmethod
    def from_json(cls, line: str | bytes) -> LineageEdge:
        """Parse one JSON line."""
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise LineageError(f"not a JSON lineage edge: {exc}") from None
        return cls.from_dict(data)


def _strs(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key) or ()
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise LineageError(f"lineage edge field {key!r} must be a list of strings")
    return tuple(value)


def _opt(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise LineageError(f"lineage edge field {key!r} must be a string")
    return value


def edge_attributes(edge: LineageEdge) -> dict[str, Any]:
    """The span attributes that carry ``edge`` (docs/spec/lineage.md).

    Example::

        from flowtrace.lineage import LineageEdge, edge_attributes

        edge = LineageEdge(id="e-1", name="copy", inputs=("a.csv",), outputs=("b.csv",))
        attributes = edge_attributes(edge)
        assert attributes["flowtrace.lineage.inputs"] == ["a.csv"]
    """
    attrs: dict[str, Any] = {ATTR.VERSION: FORMAT_VERSION, ATTR.STEP: edge.name}
    if edge.inputs:
        attrs[ATTR.INPUTS] = list(edge.inputs)
    if edge.outputs:
        attrs[ATTR.OUTPUTS] = list(edge.outputs)
    if edge.parents:
        attrs[ATTR.PARENTS] = list(edge.parents)
    if edge.code_version:
        attrs[ATTR.CODE_VERSION] = edge.code_version
    if edge.params:
        attrs[ATTR.PARAMS] = canonical_json(edge.params, "params")
    if edge.hashes:
        attrs[ATTR.HASHES] = canonical_json(edge.hashes, "hashes")
    if edge.subjects:
        attrs[ATTR.SUBJECTS] = list(edge.subjects)
    if edge.subject_omitted:
        attrs[ATTR.SUBJECT_OMITTED] = True
    if edge.tenant:
        attrs[ATTR.TENANT] = edge.tenant
    if edge.status != "ok":
        attrs[ATTR.STATUS] = edge.status
        if edge.error_type:
            attrs[ATTR.ERROR_TYPE] = edge.error_type
    return attrs


def _tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _loads(value: Any, what: str) -> dict[str, Any]:
    if not value:
        return {}
    try:
        out = json.loads(value)
    except ValueError:
        raise LineageError(f"span attribute {what} is not JSON: {value!r}") from None
    if not isinstance(out, dict):
        raise LineageError(f"span attribute {what} must be a JSON object")
    return out


def edge_from_attributes(
    attributes: Mapping[str, Any],
    *,
    lineage_id: str | None = None,
    start_ns: int = 0,
    end_ns: int = 0,
    span_parent: str | None = None,
    service: str | None = None,
    error: bool = False,
) -> LineageEdge | None:
    """Rebuild an edge from span attributes; ``None`` if the span is not a lineage edge.

    ``lineage_id`` is the span's ``<trace id>-<span id>``, the edge id (an explicit
    ``flowtrace.lineage.id`` attribute wins).

    Example::

        from flowtrace.lineage import LineageEdge, edge_attributes, edge_from_attributes

        edge = LineageEdge(id="e-1", name="copy", inputs=("a.csv",), outputs=("b.csv",))
        again = edge_from_attributes(edge_attributes(edge), lineage_id="e-1")
        assert again == edge
        assert edge_from_attributes({"http.method": "GET"}) is None   # not a lineage span
    """
    edge_id = attributes.get(ATTR.ID, lineage_id)
    name = attributes.get(ATTR.STEP)
    if not isinstance(edge_id, str) or not isinstance(name, str):
        return None
    version = attributes.get(ATTR.VERSION, FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise LineageError(
            f"lineage span {edge_id} has format version {version!r}; this flowtrace reads "
            f"version {FORMAT_VERSION}"
        )
    status: Literal["ok", "error"] = (
        "error" if error or attributes.get(ATTR.STATUS) == "error" else "ok"
    )
    code_version = attributes.get(ATTR.CODE_VERSION)
    tenant = attributes.get(ATTR.TENANT)
    error_type = attributes.get(ATTR.ERROR_TYPE)
    return LineageEdge(
        id=edge_id,
        name=name,
        inputs=_tuple(attributes.get(ATTR.INPUTS)),
        outputs=_tuple(attributes.get(ATTR.OUTPUTS)),
        parents=_tuple(attributes.get(ATTR.PARENTS)),
        code_version=str(code_version) if code_version else None,
        params=_loads(attributes.get(ATTR.PARAMS), ATTR.PARAMS),
        hashes=_loads(attributes.get(ATTR.HASHES), ATTR.HASHES),
        subjects=_tuple(attributes.get(ATTR.SUBJECTS)),
        tenant=str(tenant) if tenant else None,
        status=status,
        error_type=str(error_type) if error_type and status == "error" else None,
        start_ns=start_ns,
        end_ns=end_ns,
        span_parent=span_parent,
        service=service,
        subject_omitted=bool(attributes.get(ATTR.SUBJECT_OMITTED, False)),
    )


def as_identifiers(values: Sequence[str] | Any, what: str) -> tuple[str, ...]:
    """Validate a sequence of data identifiers (a single str is one identifier)."""
    from ._ids import check_identifier

    if values is None:
        return ()
    if isinstance(values, str):
        return (check_identifier(values, what),)
    try:
        return tuple(check_identifier(v, what) for v in values)
    except TypeError:
        raise LineageError(
            f"lineage {what}s must be a str or an iterable of str, got {type(values).__name__}"
        ) from None
