"""Signing of privacy documents (bundles, receipts) with the audit Ed25519 key.

One format (docs/spec/privacy.md, "Signature"): the signature covers the RFC 8785
canonical JSON of the document without its ``signature`` member, so a third party can
check it with the spec, the document and the public key alone.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature

from ..audit import canonical, key_id, load_private_key, load_public_key
from ..errors import SignatureError

__all__ = ["FORMAT_VERSION", "sign", "verify_signed"]

FORMAT_VERSION = 1
"""``flowtrace_privacy`` member of every bundle and receipt."""


def sign(document: Mapping[str, Any], signing_key: Any) -> dict[str, Any]:
    """A copy of ``document`` with a ``signature`` member (Ed25519 over its canonical JSON).

    Example::

        from flowtrace import audit, privacy

        signed = privacy.sign({"flowtrace_privacy": 1, "kind": "note"}, audit.generate_key())
        assert signed["signature"]["alg"] == "Ed25519"
    """
    key = load_private_key(signing_key)
    body = {k: v for k, v in document.items() if k != "signature"}
    value = key.sign(canonical(body))
    return {
        **body,
        "signature": {
            "alg": "Ed25519",
            "key_id": key_id(key.public_key()),
            "value": base64.urlsafe_b64encode(value).decode("ascii").rstrip("="),
        },
    }


def verify_signed(document: Mapping[str, Any], *, public_key: Any) -> dict[str, Any]:
    """Check a signed bundle or receipt; return it without its signature, or raise
    :class:`~flowtrace.errors.SignatureError`.

    Example::

        from flowtrace import audit, privacy

        key = audit.generate_key()
        signed = privacy.sign({"flowtrace_privacy": 1, "kind": "note"}, key)
        assert privacy.verify_signed(signed, public_key=key.public_key())["kind"] == "note"
    """
    pub = load_public_key(public_key)
    if not isinstance(document, Mapping):
        raise SignatureError("a signed privacy document is a JSON object; got something else")
    signature = document.get("signature")
    if not isinstance(signature, Mapping) or signature.get("alg") != "Ed25519":
        raise SignatureError(
            "the document carries no Ed25519 signature; only documents made by "
            "flowtrace.privacy (subject_report, erase) can be verified"
        )
    if signature.get("key_id") != key_id(pub):
        raise SignatureError(
            f"the document was signed by key {signature.get('key_id')!r}, not by the given "
            f"key {key_id(pub)!r}; verify with the audit public key that signed it"
        )
    body = {k: v for k, v in document.items() if k != "signature"}
    text = str(signature.get("value", ""))
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        pub.verify(raw, canonical(body))
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError(
            "the signature does not match the document: it was edited after signing"
        ) from exc
    return body
