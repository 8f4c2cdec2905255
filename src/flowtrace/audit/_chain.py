"""The writer's view of the chain: next sequence, head hash and Merkle frontier."""

from __future__ import annotations

from ._merkle import Frontier
from ._record import GENESIS, make_line

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
        """Chain canonical ``events`` onto the head; returns their lines and hashes."""
        lines, digests = [], []
        frontier = self.frontier
        head = self.head
        for event in events:
            line, head = make_line(event, head, frontier.size)
            frontier.append(bytes.fromhex(head))
            lines.append(line)
            digests.append(head)
        self.head = head
        return lines, digests

    def copy(self) -> ChainState:
        """An independent copy (to roll back a failed write)."""
        other = ChainState()
        other.head = self.head
        other.frontier = self.frontier.copy()
        other.last_checkpoint = self.last_checkpoint
        return other
