"""The writer's view of the chain: next sequence, head hash and Merkle frontier."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from ._merkle import Frontier
from ._record import ACC_GENESIS, GENESIS, WRITER_DOMAIN, writer_member

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["ChainState", "Signer"]

Signer = tuple["Ed25519PrivateKey", str]
"""A writer's private key and its key id."""


class ChainState:
    """Where the chain stands after the records seen so far (by this or another writer)."""

    __slots__ = ("acc", "frontier", "head", "last_checkpoint")

    def __init__(self) -> None:
        self.head = GENESIS
        self.frontier = Frontier()
        self.last_checkpoint = 0
        self.acc = ACC_GENESIS
        """SHA-256 accumulator over every writer signature so far (each new one covers it)."""

    @property
    def size(self) -> int:
        """Records in the chain; also the sequence number of the next record."""
        return self.frontier.size

    def extend(
        self, events: list[bytes], signer: Signer | None = None
    ) -> tuple[list[bytes], list[str]]:
        """Chain canonical ``events`` onto the head; returns their lines and hashes.

        With a ``signer`` the last line carries the writer signature over its hash, which
        vouches for the whole write (and, through the chain, everything before it).
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
            body = b'{"event":%b,"prev":"%b","seq":%d,"v":2}' % (event, head, size)
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
            if signer is not None:
                key, key_id = signer
                sig = key.sign(WRITER_DOMAIN + head + self.acc.hex().encode())
                self.acc = sha(self.acc + sig).digest()
                lines[-1] = lines[-1][:-2] + writer_member(key_id, sig.hex()) + b"}\n"
        return lines, digests

    def copy(self) -> ChainState:
        """An independent copy (to roll back a failed write)."""
        other = ChainState()
        other.head = self.head
        other.frontier = self.frontier.copy()
        other.last_checkpoint = self.last_checkpoint
        other.acc = self.acc
        return other
