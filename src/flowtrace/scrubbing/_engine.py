"""The scrubbing engine: walks any structure and returns a scrubbed copy.

Two decisions are made for every value: is it classified by its *key* (schema, with
type awareness: numbers and bools under credential-only keys are not secrets), and does
its *shape* match a detector (free text keeps everything but the match). The input is
never mutated; report-only mode returns it unchanged and only counts.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import decimal
import enum
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..classify import DEFAULT_SCHEMA, Category, Classification, Level, Schema
from ._detectors import BUILTIN_DETECTORS, Detector, card_spans, compile_detectors
from ._report import ScrubReport
from ._strategies import DROP, Redact, Strategy, _DropMarker

__all__ = ["Scrubber"]

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

StrategyKey = str | Category | Level


class Scrubber:
    """Scrubs values, structures and free text; immutable and thread-safe once built.

    Args:
        schema: field classifications (merged with the built-in key rules unless
            ``default_keys=False``).
        detectors: value-shape detectors (default: all built-ins).
        strategies: per detector name, :class:`~flowtrace.classify.Category` or
            :class:`~flowtrace.classify.Level`; first match wins in that order.
        default: the strategy when nothing in ``strategies`` applies (redact).
        min_level: key-classified fields below this level are left alone.
        report_only: count what would be scrubbed, change nothing (for rollout).
        neutralize: escape CR, LF, NEL, U+2028/9, ESC and other controls (log injection).
        scan_json: parse strings that hold a JSON object/array and scrub them as data.
        max_depth / max_items / max_string: bounds; beyond them values are replaced by a
            marker (fail closed), never passed through.
        time_budget: seconds per call; values scanned after it is spent are redacted.
        clock: monotonic clock in seconds (a hook for deterministic tests).
    """

    def __init__(
        self,
        *,
        schema: Schema | Mapping[str, Any] | None = None,
        detectors: Sequence[Detector] | None = None,
        strategies: Mapping[StrategyKey, Strategy] | None = None,
        default: Strategy | None = None,
        default_keys: bool = True,
        min_level: Level = Level.CONFIDENTIAL,
        report_only: bool = False,
        neutralize: bool = True,
        scan_json: bool = True,
        max_depth: int = 32,
        max_items: int = 10_000,
        max_string: int = 4 * 1024 * 1024,
        time_budget: float = 1.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if schema is None:
            user = Schema()
        elif isinstance(schema, Schema):
            user = schema
        else:
            user = Schema.from_dict(schema)
        self.schema = DEFAULT_SCHEMA.merged(user) if default_keys else user
        self.detectors = tuple(BUILTIN_DETECTORS if detectors is None else detectors)
        self._prefilter, self._each = compile_detectors(self.detectors, control=neutralize)
        self.strategies: dict[StrategyKey, Strategy] = dict(strategies or {})
        self.default: Strategy = default or Redact()
        self.min_level = min_level
        self.report_only = report_only
        self.neutralize = neutralize
        self.scan_json = scan_json
        self.max_depth = max_depth
        self.max_items = max_items
        self.max_string = max_string
        self.time_budget = time_budget
        self.clock = clock
        self._has_card = any(d.name == "card" for d in self.detectors)
        self._key_cache: dict[str, Classification | None] = {}

    # -- public API ------------------------------------------------------------------------

    def scrub(self, obj: Any) -> Any:
        """A scrubbed copy of ``obj`` (``obj`` itself in report-only mode)."""
        return self.scrub_with_report(obj)[0]

    def scrub_with_report(self, obj: Any) -> tuple[Any, ScrubReport]:
        """The scrubbed copy and a :class:`ScrubReport` (paths, detectors, counts)."""
        run = _Run(self)
        result = run.walk(obj, (), 0, None)
        if result is DROP:
            result = None
        if self.report_only:
            return obj, run.report
        return result, run.report

    def scrub_text(self, text: str, *, field: str = "") -> str:
        """Scrub one free-text string (a log message, a span name)."""
        return self.scrub_with_report_text(text, field=field)[0]

    def scrub_with_report_text(self, text: str, *, field: str = "") -> tuple[str, ScrubReport]:
        """Like :meth:`scrub_text`, also returning the report."""
        run = _Run(self)
        path: tuple[str | int, ...] = (field,) if field else ()
        result = run.text(text, path, 0) if type(text) is str else run.walk(text, path, 0, None)
        if self.report_only:
            return text, run.report
        return (result if isinstance(result, str) else str(result)), run.report

    def classify(self, key: str) -> Classification | None:
        """The classification this scrubber gives a field name (``None``: not classified)."""
        cached = self._key_cache.get(key, _MISS)
        if cached is not _MISS:
            return cached  # type: ignore[return-value]
        found = self.schema.lookup(key)
        if found is not None and found.level < self.min_level:
            found = None
        if len(self._key_cache) > 4096:
            self._key_cache.clear()
        self._key_cache[key] = found
        return found

    def strategy_for(
        self, label: str, categories: Iterable[Category], level: Level | None
    ) -> Strategy:
        """The strategy for a detector label / classification (see ``strategies``)."""
        strategies = self.strategies
        if not strategies:
            return self.default
        found = strategies.get(label)
        if found is not None:
            return found
        for cat in sorted(categories):
            found = strategies.get(cat)
            if found is not None:
                return found
        if level is not None:
            found = strategies.get(level)
            if found is not None:
                return found
        return self.default


_MISS = object()


def _render(path: tuple[str | int, ...]) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


class _Run:
    """State of one scrub call: report, deadline, containers on the current path."""

    __slots__ = ("active", "deadline", "expired", "report", "s")

    def __init__(self, scrubber: Scrubber) -> None:
        self.s = scrubber
        self.report = ScrubReport()
        self.deadline = scrubber.clock() + scrubber.time_budget
        self.expired = False
        self.active: set[int] = set()

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
        cats = tuple(categories)
        category = cats[0] if len(cats) == 1 else (min(cats) if cats else None)
        field = _render(path)
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
        label = next(iter(sorted(cls.categories)), None)
        return self.replace(
            text,
            "field" if label is None else label.value,
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
            if isinstance(obj, Mapping):
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
        paths = s.schema.has_paths
        for i, (k, v) in enumerate(obj.items()):
            if i >= s.max_items:
                self.report.truncated += 1
                out["[TRUNCATED]"] = f"{len(obj) - i} more"
                break
            if type(k) is str:
                sub = (*path, k)
                cls: Classification | None
                if inherited is not None:
                    cls = inherited
                elif paths:
                    cls = s.schema.lookup(".".join(p for p in sub if isinstance(p, str)))
                    if cls is not None and cls.level < s.min_level:
                        cls = None
                else:
                    cls = s.classify(k)
                nk: Any = self.text(k, (*path, "<key>"), 0)
            else:
                sub = (*path, str(k))
                cls = inherited
                nk = self.walk(k, (*path, "<key>"), depth + 1, None)
                nk = _hashable(nk)
            nv = self.walk(v, sub, depth + 1, cls)
            if nv is DROP:
                continue
            out[nk] = nv
        return out

    def integer(self, value: int, path: tuple[str | int, ...]) -> Any:
        if self.s._has_card and 10**12 <= value < 10**19:
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
            self.report.budget_exceeded += 1
            self.report.add(_render(path), "budget", None)
            return "[REDACTED:budget]"
        if len(value) > s.max_string:
            self.report.budget_exceeded += 1
            self.report.add(_render(path), "oversize", None)
            return "[REDACTED:oversize]"
        m = s._prefilter.search(value)
        if m is None:
            return value
        result: Any = value
        if s.scan_json and value[:1] in "{[" and depth < 4:
            result = self.embedded_json(value, path, depth)
        if result is value:
            result = self.scan(value, m.start(), path)
        if s.clock() > self.deadline:
            self.expired = True
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
        before = (self.report.total, self.report.neutralized)
        new = self.walk(data, path, depth + 1, None)
        if (self.report.total, self.report.neutralized) == before:
            return value
        return json.dumps(new, ensure_ascii=False, default=str)

    def scan(self, value: str, pos: int, path: tuple[str | int, ...]) -> str:
        """Replace every validated detector match; then neutralize control characters."""
        spans: list[tuple[int, int, int, Detector]] = []
        for rank, (det, pattern) in enumerate(self.s._each):
            for m in pattern.finditer(value, pos):
                for start, end in det.spans(m):
                    spans.append((start, -end, rank, det))
        out: list[str] = []
        last = 0
        if spans:
            spans.sort(key=lambda x: (x[0], x[1], x[2]))
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
        if self.s.neutralize:
            result = self.neutralize(result)
        return result

    def neutralize(self, value: str) -> str:
        from ._detectors import CONTROL_RE

        def esc(m: Any) -> str:
            ch = m.group()
            return _ESCAPES.get(ch) or f"\\x{ord(ch):02x}"

        new, n = CONTROL_RE.subn(esc, value)
        if n:
            self.report.neutralized += n
            return new
        return value


def card_spans_whole(text: str) -> bool:
    """Whether a digit string is, as a whole, a valid card number."""
    from ._detectors import CARD_WHOLE

    m = CARD_WHOLE.fullmatch(text)
    return bool(m and card_spans(m) == [(0, len(text))])


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value
