"""One scrub call, value by value: the prefilter and full scan of a string, the
replacement of what it finds.

Internal to :class:`flowtrace.scrubbing.Scrubber`: :class:`Scan` is the base of
``_walk.Run``, which adds the traversal of containers.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..classify import Category, Classification, Level
from ..errors import ScrubBudgetExceededError
from ._checks import card_brand, luhn_valid
from ._detectors import CONTROL_RE, CONTROL_RE_KEEP_LF, Detector
from ._normalize import View, original_span, view_of
from ._prefilter import (
    B64_RUN,
    BENIGN_SHAPE,
    TRIGGER,
    aws_secret_at,
    builtin_candidates,
    encoded_runs,
    has_key_word,
    key_word_at,
)
from ._report import ScrubReport
from ._strategies import DROP, _DropMarker

if TYPE_CHECKING:
    from ._engine import Scrubber

__all__ = ["MAX_DECODE_LAYERS", "SKELETON", "Scan", "card_spans_whole", "digit_count", "plain"]

_LOCAL_BEFORE_AT = re.compile(r"[\w.%+\-]{1,64}")
"""An email's local part, read backwards from its ``@`` (see ``Scan.emails``)."""

MAX_DECODE_LAYERS = 2
"""Base64 inside base64 (or inside JSON inside base64) is decoded this deep, no deeper."""

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


def _render(path: tuple[str | int, ...]) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


class Scan:
    """State of one scrub call (report, deadline, containers on the current path) and
    the treatment of single values; :class:`~._walk.Run` adds the traversal."""

    __slots__ = (
        "_report",
        "active",
        "changes",
        "deadline",
        "expired",
        "first_hit",
        "keep_newlines",
        "last_view",
        "layer",
        "s",
        "want_report",
    )

    def __init__(self, scrubber: Scrubber, *, want_report: bool = True) -> None:
        self.s = scrubber
        self.layer = 0
        """How many base64 layers this scan is nested in (see MAX_DECODE_LAYERS)."""
        self.first_hit: tuple[str, Category | None] | None = None
        """Label and category of the first replacement (names a decoded run's finding)."""
        self.last_view: tuple[str, str, list[View]] | None = None
        """(value, its normalised view, layers) from the prefilter, reused by the scan."""
        self.keep_newlines = False
        """Multi-line text (tracebacks): scanned whole, then neutralized except LF."""
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
        if self.first_hit is None:
            cats0 = tuple(categories)
            self.first_hit = (label, cats0[0] if len(cats0) == 1 else None)
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
        out = self.replace(
            text,
            self.s.field_label(cls),
            cls.categories,
            cls.level,
            path,
            in_text=False,
        )
        # Bytes stay bytes (ASGI header values): a consumer expecting bytes keeps working.
        return out.encode() if t is bytes and isinstance(out, str) else out

    def integer(self, value: int, path: tuple[str | int, ...]) -> Any:
        if self.s._has_card and 10**11 <= value < 10**19:
            text = str(value)
            if card_spans_whole(text):
                return self.replace(text, "card", (Category.PCI,), None, path, in_text=False)
        return value

    # -- strings ---------------------------------------------------------------------------

    def text(self, value: str, path: tuple[str | int, ...], depth: int) -> Any:
        s = self.s
        if self.expired:
            return self.redacted_whole("budget", path)
        if len(value) > s.max_string:
            return self.redacted_whole("oversize", path)
        if s._all_builtin:
            if len(value) <= 128 and BENIGN_SHAPE.fullmatch(value) is not None:
                return value
            if (
                s.scan_json and value[:1] in "{[" and value[-1:] in "}]"
            ) or not value.isprintable():
                return self.deep(value, path, depth)
            if value.isascii() and "%" not in value:
                if plain(value):
                    return value
            else:
                self.last_view = (value, *view_of(value))
                if plain(self.last_view[1]):
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
        except ScrubBudgetExceededError:
            result = None
        if result is None or s.clock() > self.deadline:
            self.expired = True
            return self.redacted_whole("budget", path)
        return result

    def redacted_whole(self, label: str, path: tuple[str | int, ...]) -> str:
        """A string replaced whole because a budget (time, size) was exceeded."""
        self.changes += 1
        self.report.budget_exceeded += 1
        self.report.add(_render(path), label, None)
        return f"[REDACTED:{label}]"

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
        """Replace every validated detector match found in the normalised view of
        ``value`` (and in the base64 runs it decodes to); then neutralize controls."""
        s = self.s
        if 12 <= len(value) <= 19 and not s._custom and value.isascii() and value.isdigit():
            # A bare 12-19 digit string: of the built-ins only the card detector can match,
            # and only on the whole string (exactly what the integer path checks).
            if s._has_card and card_spans_whole(value):
                rep = self.replace(value, "card", (Category.PCI,), None, path, in_text=True)
                return rep if isinstance(rep, str) else "[REDACTED:card]"
            return value
        if value.isascii() and "%" not in value:
            view, layers = value, []
        elif self.last_view is not None and self.last_view[0] is value:
            view, layers = self.last_view[1], self.last_view[2]
        else:
            view, layers = view_of(value)
        hits: list[tuple[int, int, int, str, Category | None]] = []
        checks = 0
        nd = digit_count(view)
        runs = encoded_runs(view) if len(view) >= 16 else []
        b64_40 = aws_secret_at(runs)
        by_name = s._by_name
        selected = [
            (*by_name[name], pos, end)
            for name, pos, end in builtin_candidates(view, nd, key_word_at(view), b64_40)
            if name in by_name
        ]
        selected += [(*c, 0, len(view)) for c in s._custom]
        for rank, det, pattern, pos, end in selected:
            if not det.builtin and det.gate is not None and not det.gate(view, nd):
                continue
            if det.builtin and det.name == "email":
                self.emails(view, pattern, rank, det, hits)
                continue
            covered = -1
            for m in pattern.finditer(view, pos, end):
                checks += 1
                if not checks & 255 and s.clock() > self.deadline:
                    raise ScrubBudgetExceededError("time budget spent while scanning")
                if m.start() < covered:
                    continue  # inside this detector's last find (zero-width card candidates)
                for start, end in det.spans(m):
                    hits.append((start, -end, rank, det.name, det.category))
                    covered = max(covered, end)
        if runs and self.layer < MAX_DECODE_LAYERS:
            self.decoded(runs, hits, path)
        out: list[str] = []
        last = 0
        if hits:
            if layers:
                hits = [
                    (*original_span(layers, start, -neg_end), rank, name, cat)
                    for start, neg_end, rank, name, cat in hits
                ]
                hits = [(a, -b, r, n, c) for a, b, r, n, c in hits]
            hits.sort(key=lambda x: (x[0], x[2], x[1]))
            for start, neg_end, _rank, name, cat in hits:
                end = -neg_end
                if start < last:
                    continue
                out.append(value[last:start])
                rep = self.replace(
                    value[start:end], name, () if cat is None else (cat,), None, path, in_text=True
                )
                out.append(rep if isinstance(rep, str) else f"[REDACTED:{name}]")
                last = end
        out.append(value[last:])
        result = "".join(out) if hits else value
        if s.neutralize and not value.isprintable():
            result = self.neutralize(result)
        return result

    def emails(
        self,
        view: str,
        pattern: re.Pattern[str],
        rank: int,
        det: Detector,
        hits: list[tuple[int, int, int, str, Category | None]],
    ) -> None:
        """Emails, tried only where one can start: at the local part before each ``@``
        (instead of every position of the text)."""
        at = view.find("@")
        done = 0  # like finditer: a match never starts inside the previous one
        while at >= 0:
            low = max(at - 64, done)
            local = _LOCAL_BEFORE_AT.match(view[low:at][::-1])
            if local is not None:
                m = pattern.match(view, at - local.end())
                if m is not None:
                    hits.append((m.start(), -m.end(), rank, det.name, det.category))
                    done = m.end()
                    at = view.find("@", done)
                    continue
            at = view.find("@", at + 1)

    def decoded(
        self,
        runs: list[re.Match[str]],
        hits: list[tuple[int, int, int, str, Category | None]],
        path: tuple[str | int, ...],
    ) -> None:
        """Decode the base64 ``runs`` that hold UTF-8 text and scan that text (one layer
        deeper); a run whose text has findings is replaced whole."""
        taken = [(start, -neg_end) for start, neg_end, *_ in hits]
        for m in runs:
            start, end = m.span()
            if any(a < end and start < b for a, b in taken):
                continue  # already replaced (a JWT, an AWS secret...)
            text = _decode_text(m.group())
            if text is None:
                continue
            if self.s.clock() > self.deadline:
                raise ScrubBudgetExceededError("time budget spent while decoding")
            inner = type(self)(self.s, want_report=False)
            inner.deadline, inner.layer = self.deadline, self.layer + 1
            inner.walk(text, path, 0, None)
            if inner.expired:
                raise ScrubBudgetExceededError("time budget spent while decoding")
            if inner.first_hit is not None:
                label, category = inner.first_hit
                hits.append((start, -end, 1 << 20, label, category))

    def neutralize(self, value: str) -> str:
        def esc(m: Any) -> str:
            ch = m.group()
            return _ESCAPES.get(ch) or f"\\x{ord(ch):02x}"

        new, n = (CONTROL_RE_KEEP_LF if self.keep_newlines else CONTROL_RE).subn(esc, value)
        if n:
            self.changes += n
            self.report.neutralized += n
            return new
        return value

    def walk(
        self, obj: Any, path: tuple[str | int, ...], depth: int, cls: Classification | None
    ) -> Any:
        """Scrub any value (embedded JSON is walked as a structure): see ``Run.walk``."""
        raise NotImplementedError


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


def plain(value: str) -> bool:
    """The prefilter: ``True`` when no built-in detector can match the (ASCII or already
    normalised) printable ``value`` and it holds no base64 run worth decoding."""
    return (
        TRIGGER.search(value) is None
        and not has_key_word(value)
        and (
            len(value) < 16
            or value.islower()
            or B64_RUN.search(value) is None
            or not encoded_runs(value)
        )
    )


def _decode_text(run: str) -> str | None:
    """The UTF-8 text a base64 run encodes, or ``None`` (not base64, not text)."""
    run = run.rstrip("=")
    if len(run) % 4 == 1:
        return None
    padded = run + "=" * (-len(run) % 4)
    try:
        if "-" in run or "_" in run:
            raw = base64.urlsafe_b64decode(padded)
        else:
            raw = base64.b64decode(padded, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    if not text.isprintable() and not text.replace("\n", "").replace("\t", "").isprintable():
        return None
    return text
