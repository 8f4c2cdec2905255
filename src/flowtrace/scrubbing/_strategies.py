"""What to do with a sensitive value: redact, mask, pseudonymize, drop or encrypt.

A strategy gets the matched text (never logged anywhere) and returns its replacement. No
strategy's output contains the value: placeholders are typed by detector or category,
masks keep at most the last four characters, pseudonyms are keyed HMACs.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..classify import Category

__all__ = [
    "DROP",
    "Drop",
    "Encrypt",
    "FieldEncryptorLike",
    "Mask",
    "Pseudonymize",
    "Redact",
    "Strategy",
]


class _DropMarker:
    """Returned by :class:`Drop`: remove the field (inside free text: redact)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DROP"


DROP = _DropMarker()
"""What a :class:`Strategy` returns to remove a field from its mapping.

Example::

    from flowtrace import Scrubber
    from flowtrace.scrubbing import DROP

    class DropAll:                                    # a Strategy
        def apply(self, value, *, label, category, field):
            return DROP

    assert Scrubber(default=DropAll()).scrub({"password": "x", "n": 1}) == {"n": 1}
"""


@runtime_checkable
class Strategy(Protocol):
    """Turns a sensitive value into its replacement.

    ``label`` names the detector (``"email"``) or the classification (``"pii"``) that
    matched; ``field`` is the path of the value (``"user.email"``; ``""`` at top level).
    Return :data:`DROP` to remove a field. Must never return the value itself.

    Example::

        from flowtrace import Scrubber

        class Hide:                                       # any object with this apply() is one
            def apply(self, value, *, label, category, field):
                return f"<{label} hidden>"

        scrubbed = Scrubber(default=Hide()).scrub({"password": "x"})
        assert scrubbed == {"password": "<credential hidden>"}
    """

    def apply(
        self, value: str, *, label: str, category: Category | None, field: str
    ) -> str | _DropMarker: ...


@dataclass(frozen=True)
class Redact:
    """Replace with ``[REDACTED:<label>]`` (the default). Never echoes the value.

    Example::

        from flowtrace import Scrubber
        from flowtrace.scrubbing import Redact

        assert Scrubber(default=Redact("***")).scrub({"password": "x"}) == {"password": "***"}
    """

    template: str = "[REDACTED:{label}]"

    def apply(
        self, value: str, *, label: str, category: Category | None, field: str
    ) -> str | _DropMarker:
        """The placeholder."""
        return self.template.format(label=label)


@dataclass(frozen=True)
class Mask:
    """Keep the last ``keep`` characters (digits only for card-like values), mask the rest.

    PCI DSS allows showing the last four digits of a PAN. Values shorter than
    ``min_length`` are masked entirely.

    Example::

        from flowtrace import Category, Scrubber
        from flowtrace.scrubbing import Mask

        scrubber = Scrubber(strategies={Category.PCI: Mask(keep=4)})
        assert scrubber.scrub({"card": "4111 1111 1111 1111"}) == {"card": "************1111"}
    """

    keep: int = 4
    char: str = "*"
    min_length: int = 12

    def apply(
        self, value: str, *, label: str, category: Category | None, field: str
    ) -> str | _DropMarker:
        """``************1111``."""
        core = "".join(c for c in value if c.isdigit()) if category is Category.PCI else value
        if len(core) < self.min_length or self.keep <= 0:
            return self.char * max(len(core), 8)
        return self.char * (len(core) - self.keep) + core[-self.keep :]


@dataclass(frozen=True)
class Pseudonymize:
    """A keyed HMAC-SHA256 pseudonym: ``[PSEUDO:<key_id>:<hex>]``.

    The same value under the same key and key id always gives the same pseudonym, so
    records can be joined without disclosing the value. Rotate by introducing a new
    ``key_id`` with a new key: pseudonyms change (old and new do not join), which is the
    point of rotation. Keep the key secret: with it, guessable values can be confirmed.

    Example::

        import os

        from flowtrace import Scrubber
        from flowtrace.scrubbing import Pseudonymize

        scrubber = Scrubber(strategies={"email": Pseudonymize(os.urandom(32), key_id="2026-q4")})
        print(scrubber.scrub({"to": "ana@example.com"}))   # {'to': '[PSEUDO:2026-q4:...]'}
    """

    key: bytes = field(repr=False)
    key_id: str = "k1"
    length: int = 16

    def __post_init__(self) -> None:
        if len(self.key) < 16:
            raise ValueError("Pseudonymize key must be at least 16 bytes of secret material")
        if not 8 <= self.length <= 64:
            raise ValueError("Pseudonymize length must be between 8 and 64 hex characters")

    def apply(
        self, value: str, *, label: str, category: Category | None, field: str
    ) -> str | _DropMarker:
        """``[PSEUDO:k1:9f2c...]``."""
        mac = hmac.new(self.key, self.key_id.encode() + b"\0" + value.encode(), hashlib.sha256)
        return f"[PSEUDO:{self.key_id}:{mac.hexdigest()[: self.length]}]"


@dataclass(frozen=True)
class Drop:
    """Remove the field from its mapping; a match inside free text is redacted instead.

    Example::

        from flowtrace import Level, Scrubber
        from flowtrace.scrubbing import Drop

        scrubber = Scrubber(strategies={Level.RESTRICTED: Drop()})
        assert scrubber.scrub({"password": "x", "n": 1}) == {"n": 1}
    """

    def apply(
        self, value: str, *, label: str, category: Category | None, field: str
    ) -> str | _DropMarker:
        """:data:`DROP`."""
        return DROP


@runtime_checkable
class FieldEncryptorLike(Protocol):
    """Anything with ``encrypt(value, *, field) -> str``.

    ``flowtrace.crypto.FieldEncryptor`` satisfies it.

    Example::

        from flowtrace import Scrubber
        from flowtrace.scrubbing import Encrypt

        class Vault:                                      # a FieldEncryptorLike
            def encrypt(self, value: str, *, field: str) -> str:
                return f"vault:{field}"

        assert Scrubber(strategies={"email": Encrypt(Vault())}).scrub({"email": "a@b.io"}) == {
            "email": "vault:email"
        }
    """

    def encrypt(self, value: str, *, field: str) -> str: ...


@dataclass(frozen=True)
class Encrypt:
    """Replace with ``encryptor.encrypt(value, field=<path or label>)``.

    If encryption fails the value is redacted (fail closed) and the engine counts it.

    Example::

        import flowtrace as ft
        from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider
        from flowtrace.scrubbing import Encrypt

        encryptor = FieldEncryptor(KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek"))
        scrubber = ft.Scrubber(strategies={"email": Encrypt(encryptor)})
        with ft.context(tenant="acme"):
            token = scrubber.scrub({"email": "ana@example.com"})["email"]
            assert encryptor.decrypt(token, field="email") == "ana@example.com"
    """

    encryptor: FieldEncryptorLike

    def apply(
        self, value: str, *, label: str, category: Category | None, field: str
    ) -> str | _DropMarker:
        """The encryptor's token."""
        token = self.encryptor.encrypt(value, field=field or label)
        if not isinstance(token, str) or value in token:
            raise TypeError("encryptor returned something that is not an opaque token")
        return token
