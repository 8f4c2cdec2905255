"""Canonical serialization (RFC 8785, JCS) and the audit record line format.

A record line (format 2) is::

    {"hash":"<64 lowercase hex>","record":<BODY>}\\n
    {"hash":"<64 lowercase hex>","record":<BODY>,"writer":{"key":"<16 hex>","sig":"<128 hex>"}}\\n

where ``BODY`` is the RFC 8785 canonical JSON of
``{"event": {...}, "prev": "<hex of the previous record's hash>", "seq": N, "v": 2}`` and
``hash`` is the lowercase hex SHA-256 of the UTF-8 bytes of ``BODY``. The last record of
every write carries the writer's Ed25519 signature over ``WRITER_DOMAIN || hash || acc``
(``acc`` accumulates every earlier signature): it vouches for that record and, through
the chain, for every record and signature before it. Format 1
(``"v": 1``, never a ``writer`` member) is still read. The line itself is canonical JSON
too. See docs/spec/audit.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "ACC_GENESIS",
    "FORMAT_VERSION",
    "GENESIS",
    "WRITER_DOMAIN",
    "MAX_SAFE_INTEGER",
    "CanonicalError",
    "canonical",
    "check_canonical",
    "fast_canonical",
    "make_line",
    "parse_line",
]

FORMAT_VERSION: Final = 2
WRITER_DOMAIN: Final = b"flowtrace-audit-writer-v2\n"
"""Domain separator of writer signatures (they can mean nothing else)."""
ACC_GENESIS: Final = bytes(32)
"""The writer-signature accumulator before the first signature (``acc`` in the spec)."""
GENESIS: Final = "0" * 64
"""``prev`` of the first record (sequence 0)."""
MAX_SAFE_INTEGER: Final = 2**53 - 1
"""Largest integer RFC 8785 (IEEE-754 doubles) represents exactly; larger ones are refused."""

_PREFIX: Final = b'{"hash":"'
_MIDDLE: Final = b'","record":'
_HEX_LEN: Final = 64
_BODY_START: Final = len(_PREFIX) + _HEX_LEN + len(_MIDDLE)
_HEX = re.compile(rb"[0-9a-f]{64}")
WRITER_OPEN: Final = b',"writer":{"key":"'
WRITER_MID: Final = b'","sig":"'
WRITER_LEN: Final = len(WRITER_OPEN) + 16 + len(WRITER_MID) + 128 + 2
"""Bytes of the ``,"writer":{...}`` member, between the body and the line's final ``}``."""
_WRITER = re.compile(rb',"writer":\{"key":"([0-9a-f]{16})","sig":"([0-9a-f]{128})"\}')


class CanonicalError(ValueError):
    """A value cannot be serialized canonically (float NaN, huge int, bad key, lone surrogate)."""


_fast_dumps = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
).encode


def _es6_number(value: float) -> str:
    """ECMAScript Number.prototype.toString for a finite double (RFC 8785 section 3.2.2.3)."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr() gives the shortest round-tripping digits; re-lay them out the ECMAScript way.
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    if frac_part == "0":
        frac_part = ""
    digits = int_part + frac_part
    stripped = digits.lstrip("0")
    # value == 0.<digits> * 10**point
    point = len(int_part) + (int(exp_text) if exp_text else 0) - (len(digits) - len(stripped))
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= point <= 21:
        return sign + digits + "0" * (point - k)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * (-point) + digits
    e = point - 1
    exponent = f"e{'+' if e >= 0 else '-'}{abs(e)}"
    if k == 1:
        return sign + digits + exponent
    return sign + digits[0] + "." + digits[1:] + exponent


def _slow(value: Any, out: list[str]) -> None:
    if value is None or value is True or value is False:
        out.append("null" if value is None else "true" if value else "false")
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CanonicalError("strings must be valid Unicode (no lone surrogates)") from exc
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            # JSON numbers are IEEE-754 doubles: allowed only if the double is exact.
            if float(value) != value:
                raise CanonicalError(
                    f"integer {value} has no exact IEEE-754 double form; store it as a string"
                )
            out.append(_es6_number(float(value)))
        else:
            out.append(str(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise CanonicalError(f"{value} has no JSON form; store it as a string instead")
        out.append(_es6_number(value))
    elif isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalError(f"object keys must be str, got {type(key).__name__}")
            items.append((key.encode("utf-16-be", "surrogatepass"), key, item))
        items.sort(key=lambda t: t[0])
        out.append("{")
        for i, (_, key, item) in enumerate(items):
            if i:
                out.append(",")
            _slow(key, out)
            out.append(":")
            _slow(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _slow(item, out)
        out.append("]")
    else:
        raise CanonicalError(
            f"{type(value).__name__} is not JSON data; pass str, int, float, bool, None, "
            "list or dict"
        )


def _needs_slow(value: Any) -> bool:
    """True when the stdlib encoder may differ from RFC 8785 (floats, big ints, odd keys)."""
    t = type(value)
    if t is str or value is None or t is bool:
        return False
    if t is int:
        return bool(abs(value) > MAX_SAFE_INTEGER)
    if t is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii() or _needs_slow(item):
                return True
        return False
    if t is list or t is tuple:
        return any(_needs_slow(item) for item in value)
    return True


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value`` as UTF-8 bytes.

    Raises :class:`CanonicalError` for values JSON cannot represent exactly.

    Example::

        from flowtrace.audit import canonical

        assert canonical({"b": 1, "a": [1.0, "x"]}) == b'{"a":[1,"x"],"b":1}'
    """
    if not _needs_slow(value):
        try:
            return _fast_dumps(value).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CanonicalError("strings must be valid Unicode (no lone surrogates)") from exc
    out: list[str] = []
    _slow(value, out)
    return "".join(out).encode("utf-8")


def fast_canonical(value: Any) -> bytes:
    """:func:`canonical` for values known to hold only str/bool/None/small ints under ASCII keys."""
    try:
        return _fast_dumps(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalError("strings must be valid Unicode (no lone surrogates)") from exc


def _strict_int(text: str) -> int:
    number = int(text)
    if abs(number) > MAX_SAFE_INTEGER:
        # Beyond 2**53 a JSON number means the nearest IEEE-754 double (RFC 8785 / I-JSON).
        raise _HasFloat
    return number


def _reject_constant(text: str) -> Any:
    raise CanonicalError(f"{text} is not JSON")


class _HasFloat(Exception):
    pass


def _no_float(text: str) -> Any:
    raise _HasFloat


_strict_decode = json.JSONDecoder(
    parse_int=_strict_int, parse_float=_no_float, parse_constant=_reject_constant
).decode


def _double_int(text: str) -> int | float:
    number = int(text)
    return float(number) if abs(number) > MAX_SAFE_INTEGER else number


_float_decode = json.JSONDecoder(parse_int=_double_int, parse_constant=_reject_constant).decode


def check_canonical(data: bytes) -> Any:
    """Parse ``data`` and return it, raising :class:`CanonicalError` unless it is canonical."""
    try:
        text = data.decode("utf-8")
        try:
            value = _strict_decode(text)
            fast = text.isascii()
        except _HasFloat:
            value = _float_decode(text)
            fast = False
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CanonicalError(f"not valid UTF-8 JSON: {exc}") from exc
    if fast:
        again = _fast_dumps(value)
    else:
        out: list[str] = []
        _slow(value, out)
        again = "".join(out)
    if again != text:
        raise CanonicalError("JSON is valid but not in RFC 8785 canonical form")
    return value


def make_line(
    event: bytes, prev: str, seq: int, version: int = FORMAT_VERSION
) -> tuple[bytes, str]:
    """The unsigned record line (with newline) for canonical ``event`` bytes, and its hash.

    The writer's hot path inlines this (:meth:`ChainState.extend`) and signs the last line.
    """
    body = b'{"event":%b,"prev":"%b","seq":%d,"v":%d}' % (
        event, prev.encode("ascii"), seq, version)
    digest = hashlib.sha256(body).hexdigest()
    return b'{"hash":"%b","record":%b}\n' % (digest.encode("ascii"), body), digest


def writer_member(key: str, sig: str) -> bytes:
    """The ``,"writer":{...}`` bytes that sign a line (inserted before its final ``}``)."""
    return WRITER_OPEN + key.encode("ascii") + WRITER_MID + sig.encode("ascii") + b'"}'


def writer_of(line: bytes) -> tuple[str, str] | None:
    """``(key id, signature hex)`` of a signed record line (no newline), else None."""
    if line[-3:] != b'"}}':
        return None
    match = _WRITER.fullmatch(line, len(line) - 1 - WRITER_LEN, len(line) - 1)
    if match is None:
        return None
    return match.group(1).decode("ascii"), match.group(2).decode("ascii")


def split_line(line: bytes) -> tuple[str, bytes] | None:
    """``(hash_hex, body)`` of a record line without its newline, or None if malformed."""
    end = -1 - WRITER_LEN if writer_of(line) is not None else -1
    if (
        len(line) <= _BODY_START - end
        or not line.startswith(_PREFIX)
        or line[_BODY_START - len(_MIDDLE) : _BODY_START] != _MIDDLE
        or not line.endswith(b"}")
    ):
        return None
    digest = line[len(_PREFIX) : len(_PREFIX) + _HEX_LEN]
    if not _HEX.fullmatch(digest):
        return None
    return digest.decode("ascii"), line[_BODY_START:end]


def line_hash(line: bytes) -> str:
    """The hash field of a well-formed record line (no checks; for trusted writers)."""
    return line[len(_PREFIX) : len(_PREFIX) + _HEX_LEN].decode("ascii")


def parse_line(line: bytes) -> dict[str, Any]:
    """Parse a record line (no chain checks) into its body dict; ValueError if malformed."""
    parts = split_line(line.rstrip(b"\n"))
    if parts is None:
        raise ValueError("not an audit record line")
    body = json.loads(parts[1])
    if not isinstance(body, dict):
        raise ValueError("record body is not an object")
    return body
