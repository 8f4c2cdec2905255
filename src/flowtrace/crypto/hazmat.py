"""Low-level token operations on raw data keys. HAZARDOUS MATERIALS.

.. warning::

   You almost certainly want :class:`flowtrace.crypto.FieldEncryptor`. The functions here
   take a **raw data key** and a caller-chosen nonce: reusing a nonce with the same key
   destroys AES-GCM's security, and nothing here checks tenants, key lifecycle or reports
   decrypts to the audit trail. They exist to produce and check the test vectors of
   docs/spec/token.md and to help other implementations interoperate.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import _token
from ._keys import DerivedKeys, open_token, seal

__all__ = ["open_token_with_key", "seal_with_key"]


def seal_with_key(
    dek: bytes,
    *,
    dek_id: bytes,
    dek_version: int,
    tenant: str,
    field: str,
    plaintext: bytes,
    context: Mapping[str, str] | None = None,
    deterministic: bool = False,
    json: bool = False,
    nonce: bytes | None = None,
) -> str:
    """A version-1 text token for ``plaintext`` under the raw 32-byte ``dek``.

    ``nonce`` (12 bytes) is for test vectors only; by default a random one is drawn.

    Example::

        import os

        from flowtrace.crypto.hazmat import seal_with_key

        dek = os.urandom(32)
        token = seal_with_key(
            dek, dek_id=bytes(16), dek_version=1, tenant="acme", field="email",
            plaintext=b"ann@example.com",
        )
        assert token.isascii() and b"ann" not in token.encode()
    """
    flags = (_token.FLAG_DETERMINISTIC if deterministic else 0) | (_token.FLAG_JSON if json else 0)
    raw = seal(
        DerivedKeys(dek),
        dek_id=dek_id,
        dek_version=dek_version,
        tenant=tenant,
        field=field,
        context=context,
        plaintext=plaintext,
        flags=flags,
        nonce=nonce,
    )
    return _token.encode_text(raw)


def open_token_with_key(
    dek: bytes,
    token: str,
    *,
    tenant: str,
    field: str,
    context: Mapping[str, str] | None = None,
) -> bytes:
    """The plaintext of a version-1 text token under the raw ``dek`` (no DEK-id check).

    A wrong tenant or field fails authentication
    (:class:`~flowtrace.errors.TamperedTokenError`), as with ``FieldEncryptor``.

    Example::

        import os

        from flowtrace.crypto.hazmat import open_token_with_key, seal_with_key
        from flowtrace.errors import TokenError

        dek = os.urandom(32)
        token = seal_with_key(dek, dek_id=bytes(16), dek_version=1, tenant="acme",
                              field="email", plaintext=b"ann@example.com")
        assert open_token_with_key(dek, token, tenant="acme", field="email") == b"ann@example.com"
        try:
            open_token_with_key(dek, token, tenant="globex", field="email")
        except TokenError as exc:
            print(type(exc).__name__, exc)
    """
    raw = _token.decode_text(token)
    flags, _, _ = _token.check(raw)
    return open_token(DerivedKeys(dek), raw, flags, tenant, field, context)
