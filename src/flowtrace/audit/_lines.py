"""Split a byte stream into lines in linear time and bounded memory.

Every reader of a log (the verifier, a writer catching up with other processes, queries,
proofs) goes through :class:`LineReader`: each byte is copied a bounded number of times,
at most ``max_line`` bytes of an unfinished line are held, and a longer line raises
:class:`~flowtrace.errors.OversizedLineError` naming the offset where it starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

from ..errors import ConfigError, OversizedLineError

__all__ = ["CHUNK", "DEFAULT_MAX_LINE", "LineReader", "check_max_line", "iter_lines"]

DEFAULT_MAX_LINE: Final = 1 << 20
"""Default bound on one record or checkpoint line (1 MiB), newline excluded."""
CHUNK: Final = 1 << 20


def check_max_line(max_line: int) -> int:
    """``max_line`` if it is a usable bound, else :class:`ConfigError`."""
    if type(max_line) is not int or max_line < 256:
        raise ConfigError(f"max_line_bytes must be an int >= 256, got {max_line!r}")
    return max_line


class LineReader:
    """Incremental splitter: :meth:`feed` chunks, get complete lines (without newlines)."""

    __slots__ = ("_max", "_parts", "_pending", "offset")

    def __init__(self, max_line: int = DEFAULT_MAX_LINE, offset: int = 0) -> None:
        self._max = check_max_line(max_line)
        self._parts: list[bytes] = []
        self._pending = 0
        self.offset = offset
        """Byte offset where the next (unfinished) line starts."""

    @property
    def pending(self) -> bytes:
        """The bytes of an unfinished last line (empty at a line boundary)."""
        return b"".join(self._parts)

    def _too_long(self, at: int) -> OversizedLineError:
        return OversizedLineError(
            f"the line starting at byte {at} is longer than {self._max} bytes: not a record "
            "this log's writers produce (raise max_line_bytes only if you wrote such records)",
            offset=at,
        )

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines ``chunk`` completes, oldest first."""
        end = chunk.find(b"\n")
        if end < 0:
            self._pending += len(chunk)
            if self._pending > self._max:
                raise self._too_long(self.offset)
            self._parts.append(chunk)
            return []
        if self._pending + end > self._max:
            raise self._too_long(self.offset)
        if self._parts:
            self._parts.append(chunk[:end])
            first = b"".join(self._parts)
            self._parts = []
        else:
            first = chunk[:end]
        self._pending = 0
        lines = chunk[end + 1 :].split(b"\n")
        lines[0:0] = [first]
        rest = lines.pop()
        offset = self.offset
        limit = self._max
        for line in lines:
            if len(line) > limit:
                raise self._too_long(offset)
            offset += len(line) + 1
        self.offset = offset
        if rest:
            if len(rest) > limit:
                raise self._too_long(offset)
            self._parts.append(rest)
            self._pending = len(rest)
        return lines


def iter_lines(
    chunks: Iterable[bytes], max_line: int = DEFAULT_MAX_LINE
) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` of every complete line; a final unterminated piece is dropped."""
    reader = LineReader(max_line)
    for chunk in chunks:
        offset = reader.offset
        for line in reader.feed(chunk):
            yield offset, line
            offset += len(line) + 1
