"""One scrub call: the walk over a structure, the scan of a string, the replacement.

Internal to :class:`flowtrace.scrubbing.Scrubber`; see ``_engine`` for the options.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import decimal
import enum
import itertools
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..classify import Category, Classification, Level
from ..errors import ScrubBudgetExceeded
from ._checks import card_brand, luhn_valid
from ._detectors import (
    B64_RUN,
    BENIGN_SHAPE,
    CONTROL_RE,
    TRIGGER,
    Detector,
    builtin_candidates,
)
from ._report import ScrubReport
from ._strategies import DROP, _DropMarker

if TYPE_CHECKING:
    from ._engine import Scrubber

__all__ = ["MISS", "Run"]

_SAFE_SCALARS = (
    type(None),
    bool,
    float,
    complex,
    _dt.datetime,
    _dt.date,
    _dt.time,
    _dt.timedelta,
    decimal.Decimal,
    uuid.UUID,
    enum.Enum,
)

_ESCAPES = {
    "\r": "\\r",
    "\n": "\\n",
    "\x1b": "\\x1b",
    "\x85": "\\x85",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}

_DIGITS = b"0123456789"

SKELETON = bytes.maketrans(b"23456789", b"11111111")
"""UTF-8 bytes with every digit 1-9 written as 1 (0 kept: the prefilter treats a leading
0 specially). Every check of the mapping's fast path — ``BENIGN_SHAPE``, ``TRIGGER``,
``B64_RUN``, ``isprintable``/``islower``, length — sees digits 1-9 only as a class, so two
strings with the same skeleton get the same verdict: a value whose skeleton was cleared
(``"ORD-2026-000123"`` -> ``b"ORD-1011-000111"``) is cleared without running them."""


def digit_count(value: str) -> int:
    """Number of ASCII digits in ``value`` (bytes.translate: a C loop, no table lookups
    per character; UTF-8 never encodes anything else as bytes 0x30-0x39)."""
    raw = value.encode("utf-8", "surrogatepass")
    return len(raw) - len(raw.translate(None, _DIGITS))


MISS = object()
_MISS = MISS
_EMPTY: set[str] = set()


def _render(path: tuple[str | int, ...]) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


class Run:
    """State of one scrub call: report, deadline, containers on the current path."""

    __slots__ = ("_report", "active", "changes", "deadline", "expired", "s", "want_report")

    def __init__(self, scrubber: Scrubber, *, want_report: bool = True) -> None:
        self.s = scrubber
        self._report: ScrubReport | None = None
        self.want_report = want_report
        """False for :meth:`Scrubber.scrub`: findings (paths, labels) are then not built."""
        self.changes = 0
        """Replacements and neutralized characters so far (kept even without a report)."""
        self.deadline = scrubber.clock() + scrubber.time_budget
        self.expired = False
        self.active: set[int] = set()

    @property
    def report(self) -> ScrubReport:
        """Created on first use: most events have nothing to report."""
        if self._report is None:
            self._report = ScrubReport()
        return self._report

    def hits(self) -> int:
        """Replacements and neutralizations so far (without creating a report)."""
        return self.changes

    # -- replacement -----------------------------------------------------------------------

    def replace(
        self,
        value: str,
        label: str,
        categories: Iterable[Category],
        level: Level | None,
        path: tuple[str | int, ...],
        *,
        in_text: bool,
    ) -> str | _DropMarker:
        self.changes += 1
        if self.s._redact_all and not self.want_report:
            # The default strategy, nobody asking for paths: the placeholder is all there
            # is to compute (Redact never echoes the value, whatever its label).
            return f"[REDACTED:{label}]"
        cats = tuple(categories)
        category = cats[0] if len(cats) == 1 else (min(cats) if cats else None)
        field = _render(path)
        if self.want_report:
            self.report.add(field, label, category)
        strategy = self.s.strategy_for(label, cats, level)
        try:
            out = strategy.apply(value, label=label, category=category, field=field)
        except Exception:
            # A failing strategy (e.g. the KMS behind Encrypt is down) never lets the
            # value through: it is redacted instead.
            return f"[REDACTED:{label}]"
        if out is DROP:
            return f"[REDACTED:{label}]" if in_text else DROP
        if not isinstance(out, str) or (len(value) >= 4 and value in out):
            return f"[REDACTED:{label}]"
        return out

    def classified(self, value: Any, cls: Classification, path: tuple[str | int, ...]) -> Any:
        """A leaf under a key the schema classifies."""
        t = type(value)
        if value is None or t is bool:
            return value
        if t in (int, float) and cls.only_credential:
            return value  # tokens_used: 512 is not a secret
        if t is bytes:
            text = value.decode("utf-8", "replace")
        elif t is str:
            text = value
        else:
            try:
                text = str(value)
            except Exception:
                text = ""
        return self.replace(
            text,
            self.s.field_label(cls),
            cls.categories,
            cls.level,
            path,
            in_text=False,
        )

    # -- traversal -------------------------------------------------------------------------

    def walk(
        self, obj: Any, path: tuple[str | int, ...], depth: int, cls: Classification | None
    ) -> Any:
        t = type(obj)
        if t is str:
            return self.classified(obj, cls, path) if cls else self.text(obj, path, 0)
        if t is dict or t is list or t is tuple or t is set or t is frozenset:
            return self.container(obj, path, depth, cls)
        if t is int:
            if cls:
                return self.classified(obj, cls, path)
            return self.integer(obj, path)
        if isinstance(obj, _SAFE_SCALARS):
            return self.classified(obj, cls, path) if cls else obj
        if cls and isinstance(obj, str | bytes | bytearray):
            return self.classified(obj, cls, path)
        if isinstance(obj, bytes | bytearray | memoryview):
            return self.binary(bytes(obj), path)
        if isinstance(obj, str):
            return self.text(str(obj), path, 0)
        if isinstance(obj, int):
            return self.integer(int(obj), path)
        if isinstance(obj, Mapping | list | tuple | set | frozenset):
            return self.container(obj, path, depth, cls)
        if isinstance(obj, BaseException):
            return self.exception(obj, path, depth)
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return self.dataclass(obj, path, depth, cls)
        if hasattr(type(obj), "model_fields") and hasattr(obj, "model_copy"):
            return self.pydantic(obj, path, depth, cls)
        return self.opaque(obj, path, cls)

    def container(
        self, obj: Any, path: tuple[str | int, ...], depth: int, cls: Classification | None
    ) -> Any:
        s = self.s
        if depth >= s.max_depth:
            self.report.truncated += 1
            return "[REDACTED:depth]"
        oid = id(obj)
        if oid in self.active:
            return "[CYCLE]"
        self.active.add(oid)
        try:
            if type(obj) is dict or isinstance(obj, Mapping):
                return self.mapping(obj, path, depth, cls)
            items: list[Any] = []
            for i, item in enumerate(obj):
                if i >= s.max_items:
                    self.report.truncated += 1
                    items.append(f"[TRUNCATED:{len(obj) - i} more]")
                    break
                new = self.walk(item, (*path, i), depth + 1, cls)
                if new is not DROP:
                    items.append(new)
            t = type(obj)
            if t is list:
                return items
            if t is tuple:
                return tuple(items)
            if t is set or t is frozenset:
                return t(_hashable(x) for x in items)
            if isinstance(obj, tuple) and hasattr(obj, "_fields"):
                try:
                    return t(*items)
                except Exception:
                    return tuple(items)
            if isinstance(obj, set | frozenset):
                return {_hashable(x) for x in items}
            return items
        finally:
            self.active.discard(oid)

    def mapping(
        self,
        obj: Mapping[Any, Any],
        path: tuple[str | int, ...],
        depth: int,
        inherited: Classification | None,
    ) -> dict[Any, Any]:
        s = self.s
        out: dict[Any, Any] = {}
        paths = s._has_paths
        key_info = s._key_info
        # Short values already found to hold nothing (enums, levels, methods...); only
        # consulted for unclassified values, and only while no budget is exceeded.
        benign_values = s._benign_values if s._all_builtin and not self.expired else _EMPTY
        benign_skeletons = s._benign_skeletons
        # Hot path: values that certainly hold nothing are copied without a call.
        fast = s._all_builtin and not self.expired
        trigger = TRIGGER.search
        b64 = B64_RUN.search
        benign_shape = BENIGN_SHAPE.fullmatch
        max_string = s.max_string
        items: Iterable[tuple[Any, Any]] = obj.items()
        if len(obj) > s.max_items:
            self.report.truncated += 1
            items = itertools.islice(items, s.max_items)
            out["[TRUNCATED]"] = f"{len(obj) - s.max_items} more"
        for k, v in items:
            if type(k) is str:
                # One lookup for the common case: a key already seen and found to hold
                # nothing, with its (type-unaware) schema classification.
                cls: Classification | None
                found = key_info.get(k, _MISS)
                if found is _MISS:
                    nk, cls = self.new_key(k, path)
                else:
                    nk, cls = k, found  # type: ignore[assignment]
                if inherited is not None:
                    cls = inherited
                elif paths:
                    sub = (*path, k)
                    cls = s.schema.lookup(".".join(p for p in sub if isinstance(p, str)))
                    if cls is not None and cls.level < s.min_level:
                        cls = None
                if cls is None:
                    tv = type(v)
                    if tv is str:
                        if v in benign_values:
                            out[nk] = v
                            continue
                        if fast and len(v) <= 128 and benign_shape(v) is not None:
                            out[nk] = v
                            continue
                        skeleton = None
                        if fast and len(v) <= 64:
                            # Ids, amounts, versions: a new value, but the same shape as
                            # one already cleared (see SKELETON).
                            skeleton = v.encode("utf-8", "surrogatepass").translate(SKELETON)
                            if skeleton in benign_skeletons:
                                out[nk] = v
                                continue
                        if (
                            fast
                            and trigger(v) is None
                            and v.isprintable()
                            and (
                                len(v) < 40
                                or (len(v) <= max_string and (v.islower() or b64(v) is None))
                            )
                            and not (v[:1] in "{[" and v[-1:] in "}]")
                        ):
                            out[nk] = v
                            if skeleton is not None:
                                if len(benign_values) >= 4096:
                                    benign_values.clear()
                                benign_values.add(v)
                                if len(benign_skeletons) >= 4096:
                                    benign_skeletons.clear()
                                benign_skeletons.add(skeleton)
                            continue
                        if fast and not self.expired and len(v) <= max_string:
                            # The prefilter already ran: straight to the detectors.
                            out[nk] = self.deep(v, (*path, k), 0)
                            continue
                    elif (
                        tv is float
                        or tv is bool
                        or v is None
                        or (tv is int and not 10**11 <= v < 10**19)
                    ):
                        out[nk] = v
                        continue
                sub = (*path, k)
            else:
                sub = (*path, str(k))
                cls = inherited
                nk = self.walk(k, (*path, "<key>"), depth + 1, None)
                nk = _hashable(nk)
            nv = (
                self.container(v, sub, depth + 1, cls)
                if type(v) is dict
                else self.walk(v, sub, depth + 1, cls)
            )
            if nv is DROP:
                continue
            out[nk] = nv
        return out

    def new_key(
        self, key: str, path: tuple[str | int, ...]
    ) -> tuple[Any, Classification | None]:
        """A key not seen before: scrubbed as text, classified; cached when it holds
        nothing (bounded)."""
        s = self.s
        cls = s.classify(key)
        before = self.changes
        nk = self.text(key, (*path, "<key>"), 0)
        if nk is key and self.changes == before:
            if len(s._key_info) >= 4096:
                s._key_info.clear()
            s._key_info[key] = cls
        return nk, cls

    def integer(self, value: int, path: tuple[str | int, ...]) -> Any:
        if self.s._has_card and 10**11 <= value < 10**19:
            text = str(value)
            if card_spans_whole(text):
                return self.replace(text, "card", (Category.PCI,), None, path, in_text=False)
        return value

    def binary(self, value: bytes, path: tuple[str | int, ...]) -> bytes:
        text = value.decode("utf-8", "surrogateescape")
        new = self.text(text, path, 0)
        if new is text or not isinstance(new, str):
            return value if new is text else str(new).encode()
        return new.encode("utf-8", "surrogateescape")

    def exception(self, exc: BaseException, path: tuple[str | int, ...], depth: int) -> Any:
        args = self.walk(list(exc.args), (*path, "args"), depth + 1, None)
        try:
            new = copy.copy(exc)
            new.args = tuple(args) if isinstance(args, list) else (args,)
        except Exception:
            new = Exception(*(args if isinstance(args, list) else [args]))
        return new

    def dataclass(
        self, obj: Any, path: tuple[str | int, ...], depth: int, cls: Classification | None
    ) -> Any:
        if depth >= self.s.max_depth:
            self.report.truncated += 1
            return "[REDACTED:depth]"
        values = {
            f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if hasattr(obj, f.name)
        }
        scrubbed = self.container(values, path, depth, cls)
        if not isinstance(scrubbed, dict):
            return scrubbed
        try:
            new = copy.copy(obj)
            for name in values:
                object.__setattr__(new, name, scrubbed.get(name))
        except Exception:
            return scrubbed
        return new

    def pydantic(
        self, obj: Any, path: tuple[str | int, ...], depth: int, cls: Classification | None
    ) -> Any:
        values = {name: getattr(obj, name, None) for name in type(obj).model_fields}
        scrubbed = self.container(values, path, depth, cls)
        if not isinstance(scrubbed, dict):
            return scrubbed
        try:
            return obj.model_copy(update={k: scrubbed.get(k) for k in values})
        except Exception:
            return scrubbed

    def opaque(self, obj: Any, path: tuple[str | int, ...], cls: Classification | None) -> Any:
        """Any other object: kept as is unless its text form holds something to scrub."""
        try:
            text = str(obj)
        except Exception:
            return "[REDACTED:unrepresentable]"
        if cls:
            return self.classified(text, cls, path)
        new = self.text(text, path, 0)
        return obj if new is text else new

    # -- strings ---------------------------------------------------------------------------

    def text(self, value: str, path: tuple[str | int, ...], depth: int) -> Any:
        s = self.s
        if self.expired:
            self.changes += 1
            self.report.budget_exceeded += 1
            self.report.add(_render(path), "budget", None)
            return "[REDACTED:budget]"
        if len(value) > s.max_string:
            self.changes += 1
            self.report.budget_exceeded += 1
            self.report.add(_render(path), "oversize", None)
            return "[REDACTED:oversize]"
        if s._all_builtin and (
            (len(value) <= 128 and BENIGN_SHAPE.fullmatch(value) is not None)
            or (
                value.isprintable()
                and not (s.scan_json and value[:1] in "{[" and value[-1:] in "}]")
                and TRIGGER.search(value) is None
                and (len(value) < 40 or value.islower() or B64_RUN.search(value) is None)
            )
        ):
            return value
        return self.deep(value, path, depth)

    def deep(self, value: str, path: tuple[str | int, ...], depth: int) -> Any:
        """The full treatment of a string the prefilter did not clear: embedded JSON,
        every candidate detector, neutralization, the time budget."""
        s = self.s
        result: Any = value
        if s.scan_json and value[:1] in "{[" and depth < 4:
            result = self.embedded_json(value, path, depth)
        try:
            if result is value:
                result = self.scan(value, path)
        except ScrubBudgetExceeded:
            result = None
        if result is None or s.clock() > self.deadline:
            self.expired = True
            self.changes += 1
            self.report.budget_exceeded += 1
            self.report.add(_render(path), "budget", None)
            return "[REDACTED:budget]"
        return result

    def embedded_json(self, value: str, path: tuple[str | int, ...], depth: int) -> str:
        try:
            data = json.loads(value)
        except (ValueError, RecursionError):
            return value
        if not isinstance(data, dict | list):
            return value
        before = self.changes
        new = self.walk(data, path, depth + 1, None)
        if self.changes == before:
            return value
        return json.dumps(new, ensure_ascii=False, default=str)

    def scan(self, value: str, path: tuple[str | int, ...]) -> str:
        """Replace every validated detector match; then neutralize control characters."""
        s = self.s
        if 12 <= len(value) <= 19 and not s._custom and value.isascii() and value.isdigit():
            # A bare 12-19 digit string: of the built-ins only the card detector can match,
            # and only on the whole string (exactly what the integer path checks).
            if s._has_card and card_spans_whole(value):
                rep = self.replace(value, "card", (Category.PCI,), None, path, in_text=True)
                return rep if isinstance(rep, str) else "[REDACTED:card]"
            return value
        spans: list[tuple[int, int, int, Detector]] = []
        checks = 0
        nd = digit_count(value)
        by_name = s._by_name
        selected = [by_name[name] for name in builtin_candidates(value, nd) if name in by_name]
        selected += self.s._custom
        for rank, det, pattern in selected:
            if not det.builtin and det.gate is not None and not det.gate(value, nd):
                continue
            for m in pattern.finditer(value):
                checks += 1
                if not checks & 255 and self.s.clock() > self.deadline:
                    raise ScrubBudgetExceeded("time budget spent while scanning")
                for start, end in det.spans(m):
                    spans.append((start, -end, rank, det))
        out: list[str] = []
        last = 0
        if spans:
            spans.sort(key=lambda x: (x[0], x[2], x[1]))
            for start, neg_end, _rank, det in spans:
                end = -neg_end
                if start < last:
                    continue
                out.append(value[last:start])
                rep = self.replace(
                    value[start:end], det.name, (det.category,), None, path, in_text=True
                )
                out.append(rep if isinstance(rep, str) else f"[REDACTED:{det.name}]")
                last = end
        out.append(value[last:])
        result = "".join(out) if spans else value
        if self.s.neutralize and not value.isprintable():
            result = self.neutralize(result)
        return result

    def neutralize(self, value: str) -> str:
        def esc(m: Any) -> str:
            ch = m.group()
            return _ESCAPES.get(ch) or f"\\x{ord(ch):02x}"

        new, n = CONTROL_RE.subn(esc, value)
        if n:
            self.changes += n
            self.report.neutralized += n
            return new
        return value


def card_spans_whole(text: str) -> bool:
    """Whether a digit string is, as a whole, a valid card number (12-19 ASCII digits,
    a known IIN range for its length, Luhn-valid)."""
    return (
        12 <= len(text) <= 19
        and text.isascii()
        and text.isdigit()
        and card_brand(text) is not None
        and luhn_valid(text)
    )


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value
