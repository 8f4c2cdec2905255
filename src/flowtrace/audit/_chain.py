"""The writer's view of the chain: next sequence, head hash and Merkle frontier."""

from __future__ import annotations

import hashlib

from ._merkle import Frontier
from ._record import GENESIS

__all__ = ["ChainState"]


class ChainState:
    """Where the chain stands after the records seen so far (by this or another writer)."""

    __slots__ = ("frontier", "head", "last_checkpoint")

    def __init__(self) -> None:
        self.head = GENESIS
        self.frontier = Frontier()
        self.last_checkpoint = 0

    @property
    def size(self) -> int:
        """Records in the chain; also the sequence number of the next record."""
        return self.frontier.size

    def absorb(self, record_hash: str) -> None:
        """Fold in one record (already written) by its hash."""
        self.frontier.append(bytes.fromhex(record_hash))
        self.head = record_hash

    def extend(self, events: list[bytes]) -> tuple[list[bytes], list[str]]:
        """Chain canonical ``events`` onto the head; returns their lines and hashes.

        :func:`~flowtrace.audit._record.make_line` and :meth:`Frontier.append`, inlined:
        this loop is the writer's hot path.
        """
        lines: list[bytes] = []
        digests: list[str] = []
        sha = hashlib.sha256
        frontier = self.frontier
        nodes = frontier.nodes
        size = frontier.size
        head = self.head.encode("ascii")
        for event in events:
            body = b'{"event":%b,"prev":"%b","seq":%d,"v":1}' % (event, head, size)
            digest = sha(body).digest()
            digest_hex = digest.hex()
            head = digest_hex.encode("ascii")
            lines.append(b'{"hash":"%b","record":%b}\n' % (head, body))
            node = sha(b"\x00" + digest).digest()
            bits = size
            while bits & 1:
                node = sha(b"\x01" + nodes.pop() + node).digest()
                bits >>= 1
            nodes.append(node)
            size += 1
            digests.append(digest_hex)
        frontier.size = size
        if digests:
            self.head = digests[-1]
        return lines, digests

    def copy(self) -> ChainState:
        """An independent copy (to roll back a failed write)."""
        other = ChainState()
        other.head = self.head
        other.frontier = self.frontier.copy()
        other.last_checkpoint = self.last_checkpoint
        return other
