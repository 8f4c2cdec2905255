"""Keyed, per-tenant pseudonyms for data subjects.

Lineage never stores a raw subject (an email, a user id). It stores
``sp1:<32 hex>`` = the first 16 bytes of HMAC-SHA256(tenant_key, subject), where
``tenant_key`` = HMAC-SHA256(key, "flowtrace.lineage.tenant\\x00" + tenant). The same
subject gets a different pseudonym in each tenant, so graphs can be shared per tenant
without linking people across tenants, and nobody without the key can test a guess.

The key comes from :class:`~flowtrace.lineage.LineageConfig` (``pseudonym_key=`` bytes, or a
callable ``tenant -> bytes`` for per-tenant keys from a vault). When a subject is given
and no key is configured, recording fails closed with
:class:`~flowtrace.errors.PseudonymKeyError`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from typing import Final

from ..errors import LineageError, MissingTenantError, PseudonymKeyError

__all__ = ["PSEUDONYM_PREFIX", "Pseudonymizer", "is_pseudonym"]

PSEUDONYM_PREFIX: Final = "sp1:"
# Exactly what pseudonym() produces: anything else (even "sp1:" + other text) is raw.
_PSEUDONYM = re.compile(r"sp1:[0-9a-f]{32}")
MIN_KEY_BYTES: Final = 16

KeySource = bytes | Callable[[str], bytes]


def _check_key(key: object, tenant: str | None = None) -> bytes:
    where = f" for tenant {tenant!r}" if tenant else ""
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(
            f"the lineage pseudonym key{where} must be bytes of at least {MIN_KEY_BYTES} "
            "bytes (e.g. 32 random bytes from your secret store)"
        )
    return key


class Pseudonymizer:
    """Turns ``(tenant, subject)`` into a stable keyed pseudonym. Thread-safe.

    ``key`` is one master key (tenants get derived keys) or a callable returning the key
    of a tenant.

    Example::

        import os

        from flowtrace.lineage import Pseudonymizer

        pseudonymizer = Pseudonymizer(os.urandom(32))    # or Pseudonymizer(lambda tenant: key)
        alias = pseudonymizer.pseudonym("ana@example.com", "acme")
        assert alias == pseudonymizer.pseudonym("ana@example.com", "acme")   # stable
        assert alias != pseudonymizer.pseudonym("ana@example.com", "globex")  # per tenant
    """

    __slots__ = ("_cache", "_key")

    def __init__(self, key: KeySource) -> None:
        if not callable(key):
            _check_key(key)
        self._key = key
        self._cache: dict[str, bytes] = {}

    def _tenant_key(self, tenant: str) -> bytes:
        cached = self._cache.get(tenant)
        if cached is not None:
            return cached
        if callable(self._key):
            derived = _check_key(self._key(tenant), tenant)
        else:
            derived = hmac.digest(
                self._key, b"flowtrace.lineage.tenant\x00" + tenant.encode(), hashlib.sha256
            )
        if len(self._cache) < 10_000:
            self._cache[tenant] = derived
        return derived

    def pseudonym(self, subject: str, tenant: str | None) -> str:
        """The pseudonym of ``subject`` in ``tenant`` (``sp1:`` + 32 hex characters).

        A pseudonym is already a pseudonym: a value of exactly that form passes unchanged
        (see :func:`is_pseudonym`); anything else, ``sp1:`` prefix or not, is pseudonymised.
        Raises :class:`~flowtrace.errors.MissingTenantError` without a tenant.
        """
        if type(subject) is not str or not subject:
            raise LineageError(
                f"a lineage subject must be a non-empty str, got {type(subject).__name__}"
            )
        if is_pseudonym(subject):
            return subject
        if not tenant:
            raise MissingTenantError(
                "lineage subjects are pseudonymised per tenant, and there is no tenant; "
                "record subjects inside `flowtrace.context(tenant=...)`"
            )
        digest = hmac.digest(self._tenant_key(tenant), subject.encode(), hashlib.sha256)
        return PSEUDONYM_PREFIX + digest[:16].hex()

    def __repr__(self) -> str:  # never show key material
        return "Pseudonymizer(<key>)"


def is_pseudonym(value: str) -> bool:
    """Whether ``value`` has exactly the pseudonym form: ``sp1:`` + 32 lower-case hex."""
    return _PSEUDONYM.fullmatch(value) is not None


def require_pseudonymizer(p: Pseudonymizer | None) -> Pseudonymizer:
    """``p``, or raise :class:`PseudonymKeyError` (fail closed: never store raw subjects)."""
    if p is None:
        raise PseudonymKeyError(
            "a lineage subject was given but no pseudonym key is configured, and raw "
            "subjects are never recorded; call "
            "flowtrace.configure(lineage=flowtrace.lineage.LineageConfig("
            "pseudonym_key=<32 secret bytes>))"
        )
    return p
