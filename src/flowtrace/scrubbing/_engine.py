"""The scrubbing engine: walks any structure and returns a scrubbed copy.

Two decisions are made for every value: is it classified by its *key* (schema, with
type awareness: numbers and bools under credential-only keys are not secrets), and does
its *shape* match a detector (free text keeps everything but the match). The input is
never mutated; report-only mode returns it unchanged and only counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..classify import DEFAULT_SCHEMA, Category, Classification, Level, Schema
from ._detectors import (
    BUILTIN_DETECTORS,
    Detector,
    compile_detectors,
)
from ._report import ScrubReport
from ._strategies import DROP, Redact, Strategy
from ._walk import MISS as _MISS
from ._walk import Run

__all__ = ["Scrubber"]

StrategyKey = str | Category | Level

SESSION_KEYS = Schema(
    {
        "sessionid": Category.CREDENTIAL,
        "sessid": Category.CREDENTIAL,
        "jsessionid": Category.CREDENTIAL,
        "phpsessid": Category.CREDENTIAL,
    }
)
"""Session identifiers are bearer credentials (the bare word ``session`` is not: it names
too many benign things). Merged into the built-in key rules with ``default_keys``."""


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

    Example::

        from flowtrace import Category, Scrubber
        from flowtrace.scrubbing import Mask

        scrubber = Scrubber(strategies={Category.PCI: Mask()})
        assert scrubber.scrub({"card": "4111 1111 1111 1111"}) == {"card": "************1111"}
        assert scrubber.scrub_text("mail ana@example.com") == "mail [REDACTED:email]"
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
        time_budget: float = 0.5,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if schema is None:
            user = Schema()
        elif isinstance(schema, Schema):
            user = schema
        else:
            user = Schema.from_dict(schema)
        self.schema = DEFAULT_SCHEMA.merged(SESSION_KEYS).merged(user) if default_keys else user
        self._has_paths = self.schema.has_paths
        self.detectors = tuple(BUILTIN_DETECTORS if detectors is None else detectors)
        self._each = compile_detectors(self.detectors)
        self._all_builtin = all(d.builtin for d in self.detectors)
        self._by_name = {
            d.name: (rank, d, p) for rank, (d, p) in enumerate(self._each) if d.builtin
        }
        self._custom = [(rank, d, p) for rank, (d, p) in enumerate(self._each) if not d.builtin]
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
        # Every replacement is the default placeholder: nothing else to compute per hit.
        self._redact_all = (
            not self.strategies
            and type(self.default) is Redact
            and self.default.template == Redact().template
        )
        self._field_labels: dict[Classification, str] = {}
        self._key_cache: dict[str, Classification | None] = {}
        self._key_info: dict[str, Classification | None] = {}
        """Keys seen and found to hold nothing -> their classification by name."""
        self._benign_values: set[str] = set()
        self._benign_skeletons: set[bytes] = set()

    # -- public API ------------------------------------------------------------------------

    def scrub(self, obj: Any) -> Any:
        """A scrubbed copy of ``obj`` (``obj`` itself in report-only mode)."""
        # No report requested: findings (rendered paths, labels) are never built.
        run = Run(self, want_report=False)
        result = run.walk(obj, (), 0, None)
        if self.report_only:
            return obj
        return None if result is DROP else result

    def scrub_with_report(self, obj: Any) -> tuple[Any, ScrubReport]:
        """The scrubbed copy and a :class:`ScrubReport` (paths, detectors, counts)."""
        run = Run(self)
        result = run.walk(obj, (), 0, None)
        if result is DROP:
            result = None
        if self.report_only:
            return obj, run.report
        return result, run.report

    def scrub_text(self, text: str, *, field: str = "", multiline: bool = False) -> str:
        """Scrub one free-text string (a log message, a span name).

        The whole text is scanned at once (a PEM key or pretty-printed JSON spans lines);
        then line breaks are neutralized, except that ``multiline=True`` (tracebacks,
        stack text) keeps its line feeds and escapes every other control character.
        """
        return self._text(Run(self, want_report=False), text, field, multiline)

    def scrub_with_report_text(
        self, text: str, *, field: str = "", multiline: bool = False
    ) -> tuple[str, ScrubReport]:
        """Like :meth:`scrub_text`, also returning the report."""
        run = Run(self)
        return self._text(run, text, field, multiline), run.report

    def _text(self, run: Run, text: str, field: str, multiline: bool) -> str:
        run.keep_newlines = multiline
        path: tuple[str | int, ...] = (field,) if field else ()
        result = run.text(text, path, 0) if type(text) is str else run.walk(text, path, 0, None)
        if self.report_only:
            return text
        return result if isinstance(result, str) else str(result)

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

    def field_label(self, cls: Classification) -> str:
        """The label of a key-classified value: its first category (``"field"`` if none)."""
        label = self._field_labels.get(cls)
        if label is None:
            first = next(iter(sorted(cls.categories)), None)
            label = "field" if first is None else first.value
            if len(self._field_labels) < 1024:
                self._field_labels[cls] = label
        return label

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
