"""Lineage ids and data identifiers.

A lineage id names one edge (one run of one step). It is the OTel span context of the edge
span written as ``<32 hex trace id>-<16 hex span id>``, so any process that holds only the
id (carried in the flow context) can link to the span that produced its inputs. When no
SDK tracer is active the two halves are random: the id stays unique and the span exported
later from the durable buffer carries exactly these ids.

A data identifier is URI-like: ``scheme:path`` names a dataset, ``scheme:path#key`` a
record, and ``...::field`` a field of either (``postgres://app/users#42::email``).
"""

from __future__ import annotations

import hashlib
import os
from typing import Final, Literal

from ..errors import LineageError

__all__ = [
    "Granularity",
    "content_hash",
    "format_lineage_id",
    "granularity",
    "new_lineage_id",
    "parse_lineage_id",
    "ref",
]

Granularity = Literal["dataset", "record", "field"]

_HEX: Final = frozenset("0123456789abcdef")
MAX_IDENTIFIER_LENGTH: Final = 2048


def format_lineage_id(trace_id: int, span_id: int) -> str:
    """The lineage id of the span ``(trace_id, span_id)``.

    Example::

        from flowtrace.lineage import format_lineage_id, parse_lineage_id

        lineage_id = format_lineage_id(trace_id=1, span_id=2)
        assert lineage_id == "00000000000000000000000000000001-0000000000000002"
        assert parse_lineage_id(lineage_id) == (1, 2)
    """
    return trace_id.to_bytes(16, "big").hex() + "-" + span_id.to_bytes(8, "big").hex()


def new_lineage_id() -> str:
    """A fresh random lineage id (used when no SDK span gives one).

    Example::

        from flowtrace.lineage import new_lineage_id, parse_lineage_id

        lineage_id = new_lineage_id()                    # 32 + 16 hex digits, like a span's ids
        assert parse_lineage_id(lineage_id) is not None
    """
    raw = os.urandom(24)
    trace_id = int.from_bytes(raw[:16], "big") or 1
    span_id = int.from_bytes(raw[16:], "big") or 1
    return format_lineage_id(trace_id, span_id)


def parse_lineage_id(lineage_id: str) -> tuple[int, int] | None:
    """``(trace_id, span_id)`` encoded in ``lineage_id``, or ``None`` if it encodes none.

    Example::

        from flowtrace.lineage import parse_lineage_id

        trace_id, span_id = parse_lineage_id("0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331")
        assert f"{span_id:016x}" == "b7ad6b7169203331"
        assert parse_lineage_id("not-a-span") is None
    """
    if len(lineage_id) != 49 or lineage_id[32] != "-":
        return None
    trace_hex, span_hex = lineage_id[:32], lineage_id[33:]
    if not _HEX.issuperset(trace_hex) or not _HEX.issuperset(span_hex):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id


def check_identifier(value: object, what: str = "identifier") -> str:
    """Validate a data identifier; raises :class:`LineageError` saying what is wrong.

    Subjects are raw personal data: their messages never repeat the value.
    """
    shown = "" if what == "subject" else f" {value!r}"
    if type(value) is not str or not value:
        kind = type(value).__name__
        raise LineageError(f"lineage {what} must be a non-empty str, got{shown or ' ' + kind}")
    if len(value) > MAX_IDENTIFIER_LENGTH:
        raise LineageError(
            f"lineage {what} is {len(value)} characters; the limit is {MAX_IDENTIFIER_LENGTH}"
        )
    if not value.isprintable():
        raise LineageError(f"lineage {what}{shown} contains control characters")
    return value


def ref(dataset: str, key: str | None = None, field: str | None = None) -> str:
    """Build a data identifier: ``ref("postgres://app/users", "42", "email")``.

    Gives ``postgres://app/users#42::email``. ``key`` selects a record, ``field`` a field.

    Example::

        from flowtrace.lineage import ref

        assert ref("postgres://app/users") == "postgres://app/users"              # dataset
        assert ref("postgres://app/users", "42") == "postgres://app/users#42"     # record
        assert ref("postgres://app/users", "42", "email") == "postgres://app/users#42::email"
    """
    check_identifier(dataset, "dataset")
    if "#" in dataset or "::" in dataset:
        raise LineageError(f"dataset {dataset!r} must not contain '#' or '::'")
    out = dataset
    if key is not None:
        out += "#" + check_identifier(key, "record key")
    if field is not None:
        out += "::" + check_identifier(field, "field")
    return out


def granularity(identifier: str) -> Granularity:
    """``field``, ``record`` or ``dataset``, read from the identifier's shape.

    Example::

        from flowtrace.lineage import granularity

        assert granularity("postgres://app/users") == "dataset"
        assert granularity("postgres://app/users#42") == "record"
        assert granularity("postgres://app/users#42::email") == "field"
    """
    if "::" in identifier:
        return "field"
    if "#" in identifier:
        return "record"
    return "dataset"


def content_hash(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``, the form stored in ``flowtrace.lineage.hashes``.

    Example::

        import flowtrace as ft
        from flowtrace.lineage import content_hash, record

        hashes = {"s3://out/a.csv": content_hash(b"id,amount")}
        with ft.context(tenant="acme"):
            record("export", outputs="s3://out/a.csv", hashes=hashes)
        assert content_hash(b"abc").startswith("sha256:ba7816bf")
    """
    return "sha256:" + hashlib.sha256(data).hexdigest()
