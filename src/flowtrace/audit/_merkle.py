"""RFC 6962 / RFC 9162 Merkle tree over record hashes: roots, frontiers, inclusion proofs.

Leaf ``i`` is the 32-byte SHA-256 hash of record ``i``; the leaf hash is
``SHA-256(0x00 || leaf)`` and an interior node is ``SHA-256(0x01 || left || right)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["Frontier", "inclusion_proof", "leaf_hash", "node_hash", "root_of", "verify_inclusion"]

_sha256 = hashlib.sha256
EMPTY_ROOT = _sha256(b"").digest()
"""Root of the empty tree (RFC 6962: the hash of the empty string)."""


def leaf_hash(record_hash: bytes) -> bytes:
    """RFC 6962 leaf hash of one record hash."""
    return _sha256(b"\x00" + record_hash).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash."""
    return _sha256(b"\x01" + left + right).digest()


class Frontier:
    """The compact range of a growing tree: one perfect-subtree root per set bit of ``size``.

    Appending is amortised O(1); :meth:`root` is O(log n).
    """

    __slots__ = ("nodes", "size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        self.size = size
        self.nodes = list(nodes)

    def copy(self) -> Frontier:
        """An independent copy."""
        return Frontier(self.size, self.nodes)

    def append(self, record_hash: bytes) -> None:
        """Add the next leaf."""
        node = _sha256(b"\x00" + record_hash).digest()
        size = self.size
        nodes = self.nodes
        while size & 1:
            node = _sha256(b"\x01" + nodes.pop() + node).digest()
            size >>= 1
        nodes.append(node)
        self.size += 1

    def root(self) -> bytes:
        """Merkle tree hash of the leaves so far."""
        if not self.nodes:
            return EMPTY_ROOT
        nodes = self.nodes
        root = nodes[-1]
        for node in reversed(nodes[:-1]):
            root = node_hash(node, root)
        return root


def _mth(leaves: Sequence[bytes]) -> bytes:
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


def root_of(record_hashes: Sequence[bytes]) -> bytes:
    """Merkle tree hash of a list of record hashes."""
    return _mth(record_hashes)


def inclusion_proof(index: int, record_hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 6962 audit path for leaf ``index`` in the tree of ``record_hashes``."""
    size = len(record_hashes)
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is outside a tree of {size} records")
    path: list[bytes] = []
    lo, hi = 0, size
    # Walk down, collecting sibling subtree roots; emitted bottom-up at the end.
    while hi - lo > 1:
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        if index < lo + k:
            path.append(_mth(record_hashes[lo + k : hi]))
            hi = lo + k
        else:
            path.append(_mth(record_hashes[lo : lo + k]))
            lo = lo + k
    path.reverse()
    return path


def verify_inclusion(
    index: int, size: int, record_hash: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: does ``proof`` put ``record_hash`` at ``index`` under ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash(record_hash)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root
