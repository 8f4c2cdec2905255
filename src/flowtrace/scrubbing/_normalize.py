"""The normalised view a string is scanned in, and the map back to the original.

An attacker who controls logged text can disguise a value so that a pattern written for
ASCII misses it: fullwidth digits (U+FF14 U+FF11...), other scripts' decimal digits, zero-width
characters between the digits of a card, a no-break space inside an IBAN, a fullwidth
``@``, percent-encoding (``jane%40example.com``). Detectors therefore run on a *view*:

* every non-ASCII character is replaced by its NFKC form, a Unicode decimal digit by its
  ASCII digit, any Unicode space by ``" "``, and the zero-width characters ZWSP, ZWNJ,
  ZWJ, WJ, BOM, soft hyphen and the invisible operators U+2061-2064 are removed;
* runs of ``%XX`` that decode to UTF-8 are decoded (at most :data:`PERCENT_LAYERS` layers,
  so ``%2540`` becomes ``@`` too).

What a detector finds in the view is mapped back to the original span, which is what is
replaced: the output keeps the original text everywhere else.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right

__all__ = ["PERCENT_LAYERS", "View", "original_span", "view_of"]

PERCENT_LAYERS = 2
"""Percent-encoding layers decoded (``%25`` re-encodes ``%``: double encoding)."""

_REMOVED = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u2061\u2062\u2063\u2064\u180e")
_PERCENT = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_CHAR_CACHE: dict[str, str] = {}


def _char(ch: str) -> str:
    """The view of one non-ASCII character (cached: the set of characters is small)."""
    out = _CHAR_CACHE.get(ch)
    if out is not None:
        return out
    if ch in _REMOVED:
        out = ""
    elif ch.isspace():
        out = " "
    else:
        digit = unicodedata.decimal(ch, None)
        if digit is not None:
            out = str(digit)
        else:
            out = unicodedata.normalize("NFKC", ch)
            # NFKC may produce a character that is itself mapped (a fullwidth digit is
            # already ASCII after NFKC; a compatibility space is " ").
            out = "".join(
                c if c.isascii() else (" " if c.isspace() else c) for c in out if c not in _REMOVED
            )
    if len(_CHAR_CACHE) < 65536:
        _CHAR_CACHE[ch] = out
    return out


class View:
    """A normalised string and the map from its offsets back to the original's.

    ``segments`` are ``(view_start, orig_start, orig_len, exact)``: an exact segment is
    copied unchanged (offsets map one to one), any other maps as a whole.
    """

    __slots__ = ("_starts", "segments", "text")

    def __init__(self, text: str, segments: list[tuple[int, int, int, bool]]) -> None:
        self.text = text
        self.segments = segments
        self._starts = [s[0] for s in segments]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span covering the view's ``[start, end)`` (never smaller)."""
        first = self._orig(start, False)
        return first, (self._orig(end - 1, True) if end > start else first)

    def _orig(self, i: int, after: bool) -> int:
        k = max(bisect_right(self._starts, i) - 1, 0)
        vstart, ostart, olen, exact = self.segments[k]
        if exact:
            return ostart + (i - vstart) + (1 if after else 0)
        return ostart + olen if after else ostart


def _percent_layer(text: str) -> View | None:
    """One layer of percent-decoding, or ``None`` when nothing decodes."""
    segments: list[tuple[int, int, int, bool]] = []
    out: list[str] = []
    vpos = last = 0
    changed = False
    for m in _PERCENT.finditer(text):
        try:
            decoded = bytes.fromhex(m.group().replace("%", "")).decode("utf-8")
        except UnicodeDecodeError:
            continue
        if m.start() > last:
            segments.append((vpos, last, m.start() - last, True))
            out.append(text[last : m.start()])
            vpos += m.start() - last
        segments.append((vpos, m.start(), m.end() - m.start(), False))
        out.append(decoded)
        vpos += len(decoded)
        last = m.end()
        changed = True
    if not changed:
        return None
    if last < len(text):
        segments.append((vpos, last, len(text) - last, True))
        out.append(text[last:])
    return View("".join(out), segments)


def _unicode_layer(text: str) -> View | None:
    """Non-ASCII characters mapped (see the module docstring), or ``None`` if none change."""
    segments: list[tuple[int, int, int, bool]] = []
    out: list[str] = []
    vpos = last = 0
    changed = False
    for m in _NON_ASCII.finditer(text):
        for i in range(m.start(), m.end()):
            ch = text[i]
            new = _char(ch)
            if new == ch:
                continue
            if i > last:
                segments.append((vpos, last, i - last, True))
                out.append(text[last:i])
                vpos += i - last
            segments.append((vpos, i, 1, False))
            out.append(new)
            vpos += len(new)
            last = i + 1
            changed = True
    if not changed:
        return None
    if last < len(text):
        segments.append((vpos, last, len(text) - last, True))
        out.append(text[last:])
    return View("".join(out), segments)


def view_of(text: str) -> tuple[str, list[View]]:
    """The normalised text and the layers to map its spans back through (empty: the text
    is its own view)."""
    layers: list[View] = []
    current = text
    if not current.isascii():
        layer = _unicode_layer(current)
        if layer is not None:
            layers.append(layer)
            current = layer.text
    for _ in range(PERCENT_LAYERS):
        if "%" not in current:
            break
        layer = _percent_layer(current)
        if layer is None:
            break
        layers.append(layer)
        current = layer.text
        if not current.isascii():
            again = _unicode_layer(current)
            if again is not None:
                layers.append(again)
                current = again.text
    return current, layers


def original_span(layers: list[View], start: int, end: int) -> tuple[int, int]:
    """Map a span of the final view back through every layer to the original text."""
    for layer in reversed(layers):
        start, end = layer.span(start, end)
    return start, end
