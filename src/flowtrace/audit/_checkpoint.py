"""Signed checkpoints: Ed25519 over (size, head hash, Merkle root) and key handling.

A checkpoint line is canonical JSON::

    {"checkpoint":{"head":H,"key":K,"root":R,"size":N,"ts":T,"v":1},"sig":S}

``S`` is the lowercase hex Ed25519 signature over ``DOMAIN || canonical(checkpoint)``.
``K`` is the key id: the first 16 hex digits of SHA-256 of the raw 32-byte public key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..errors import CheckpointSignatureError, ConfigError
from ._record import CanonicalError, canonical, check_canonical

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "DOMAIN",
    "Checkpoint",
    "generate_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "private_key_pem",
    "public_key_pem",
]

DOMAIN: Final = b"flowtrace-audit-checkpoint-v1\n"
"""Signature domain separator (signatures over checkpoints can mean nothing else)."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement: the log's first ``size`` records have this head hash and root.

    Example::

        from pathlib import Path

        from flowtrace.audit import AuditLog, Checkpoint, generate_key

        key = generate_key()
        log = AuditLog("audit.jsonl", signing_key=key)
        log.append("report.export")
        log.close()                                      # writes a signed checkpoint
        lines = Path("audit.jsonl.checkpoints").read_bytes().splitlines()
        checkpoint = Checkpoint.parse(lines[-1], len(lines))
        assert checkpoint.size == 1
    """

    size: int
    head: str
    root: str
    ts: str
    key: str
    sig: str = ""

    def payload(self) -> dict[str, Any]:
        """The signed fields as a dict."""
        return {
            "head": self.head,
            "key": self.key,
            "root": self.root,
            "size": self.size,
            "ts": self.ts,
            "v": 1,
        }

    def signed_bytes(self) -> bytes:
        """The exact bytes the signature covers."""
        return DOMAIN + canonical(self.payload())

    def line(self) -> bytes:
        """The checkpoint line (with newline)."""
        return canonical({"checkpoint": self.payload(), "sig": self.sig}) + b"\n"

    @classmethod
    def sign(
        cls, private_key: Ed25519PrivateKey, *, size: int, head: str, root: str, ts: str
    ) -> Checkpoint:
        """Create and sign a checkpoint."""
        unsigned = cls(size, head, root, ts, key_id(private_key.public_key()))
        signature = private_key.sign(unsigned.signed_bytes()).hex()
        return cls(size, head, root, ts, unsigned.key, signature)

    @classmethod
    def parse(cls, line: bytes, number: int) -> Checkpoint:
        """Parse checkpoint line ``number`` (1-based, for messages); raises on malformed input."""
        try:
            data = check_canonical(line)
            body = data["checkpoint"]
            if set(data) != {"checkpoint", "sig"} or set(body) != {
                "head", "key", "root", "size", "ts", "v"
            }:
                raise ValueError("unexpected fields")
            if body["v"] != 1:
                raise ValueError(f"unsupported checkpoint version {body['v']!r}")
            fields = (body["head"], body["root"], body["key"], body["ts"], data["sig"])
            if not all(isinstance(f, str) for f in fields) or type(body["size"]) is not int:
                raise ValueError("wrong field types")
            return cls(body["size"], body["head"], body["root"], body["ts"], body["key"],
                       data["sig"])
        except (CanonicalError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointSignatureError(
                f"checkpoint line {number} is malformed ({exc}); the checkpoint file was "
                "edited or is not a flowtrace checkpoint file"
            ) from exc

    def check(self, public_key: Ed25519PublicKey, number: int) -> None:
        """Raise :class:`CheckpointSignatureError` unless the signature verifies."""
        from cryptography.exceptions import InvalidSignature

        expected = key_id(public_key)
        if self.key != expected:
            raise CheckpointSignatureError(
                f"checkpoint {number} (size {self.size}) was signed by key {self.key}, "
                f"not by the given public key {expected}",
                sequence=self.size,
            )
        try:
            public_key.verify(bytes.fromhex(self.sig), self.signed_bytes())
        except (InvalidSignature, ValueError) as exc:
            raise CheckpointSignatureError(
                f"checkpoint {number} (size {self.size}) has an invalid signature: "
                "it was forged or edited",
                sequence=self.size,
            ) from exc


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 over the raw public key.

    Example::

        from flowtrace import audit

        key = audit.generate_key()
        print(audit.key_id(key.public_key()))            # 16 hex digits, e.g. '4ae391b89df218a6'
    """
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key() -> Ed25519PrivateKey:
    """A new Ed25519 signing key for checkpoints.

    Example::

        from pathlib import Path

        from flowtrace import audit

        key = audit.generate_key()
        Path("audit-signing.pem").write_bytes(audit.private_key_pem(key))   # protect this file
        Path("audit-public.pem").write_bytes(audit.public_key_pem(key.public_key()))
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


def private_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM (unencrypted: protect the file, or keep the key in a KMS/HSM).

    Example::

        from flowtrace import audit

        pem = audit.private_key_pem(audit.generate_key())
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    """
    from cryptography.hazmat.primitives import serialization

    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM of a public key.

    Example::

        from flowtrace import audit

        pem = audit.public_key_pem(audit.generate_key().public_key())
        assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")   # give this to the auditor
    """
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _read(source: str | bytes | Path) -> bytes:
    if isinstance(source, Path):
        return source.read_bytes()
    if isinstance(source, str):
        stripped = source.strip()
        if stripped.startswith("-----BEGIN") or (
            len(stripped) == 64 and all(c in "0123456789abcdefABCDEF" for c in stripped)
        ):
            return stripped.encode("ascii")
        return Path(source).read_bytes()
    return source


def load_public_key(source: Any) -> Ed25519PublicKey:
    """An Ed25519 public key from a key object, PEM bytes/text, 64 hex digits, or a file path.

    Example::

        from flowtrace import audit

        key = audit.generate_key()
        pem = audit.public_key_pem(key.public_key())
        assert audit.key_id(audit.load_public_key(pem)) == audit.key_id(key.public_key())
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    if isinstance(source, Ed25519PublicKey):
        return source
    if isinstance(source, Ed25519PrivateKey):
        return source.public_key()
    try:
        data = _read(source).strip()
        if data.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
        else:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(data.decode("ascii")))
    except (OSError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"could not load an Ed25519 public key from {source!r}: {exc}; pass a PEM file "
            "written by `flowtrace audit keygen`, PEM text or 64 hex digits"
        ) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{source!r} is not an Ed25519 public key")
    return key


def load_private_key(source: Any) -> Ed25519PrivateKey:
    """An Ed25519 private key from a key object, PKCS#8 PEM bytes/text or a file path.

    Example::

        from pathlib import Path

        from flowtrace import audit

        Path("signing.pem").write_bytes(audit.private_key_pem(audit.generate_key()))
        log = audit.AuditLog("audit.jsonl", signing_key=audit.load_private_key("signing.pem"))
        log.close()
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if isinstance(source, Ed25519PrivateKey):
        return source
    try:
        key = serialization.load_pem_private_key(_read(source), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"could not load an Ed25519 private key from {source!r}: {exc}; pass a PEM file "
            "written by `flowtrace audit keygen` or an Ed25519PrivateKey"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{source!r} is not an Ed25519 private key")
    return key

