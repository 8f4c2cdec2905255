"""Signing keys (Ed25519 / P-256) and the JWKS a verifier trusts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ..errors import TrustKeyError
from ._jose import jwt

__all__ = ["ALGORITHMS", "PrivateKey", "PublicKey", "Signer", "jwks", "public_keys"]

ALGORITHMS: Final = ("EdDSA", "ES256")
"""The algorithms a transaction token may use; anything else is refused.

Example::

    import flowtrace as ft

    assert "none" not in ft.trust.ALGORITHMS and "HS256" not in ft.trust.ALGORITHMS
"""

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def _alg_of(key: object) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return "ES256"
        raise TrustKeyError(
            f"EC key on curve {key.curve.name}: transaction tokens use P-256 (ES256) or Ed25519"
        )
    raise TrustKeyError(
        f"a {type(key).__name__} cannot sign transaction tokens; use an Ed25519 (EdDSA) or "
        "P-256 (ES256) key (RSA and shared secrets are refused on purpose)"
    )


def _load_private(data: bytes, password: bytes | None) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError) as exc:
        raise TrustKeyError(
            f"not a PEM private key ({exc}); pass an Ed25519 or P-256 key in PKCS#8 PEM"
        ) from exc
    _alg_of(key)
    return key  # type: ignore[return-value]


class Signer:
    """A private key that mints transaction tokens, with its key id (``kid``).

    Keys come from a PEM file or bytes (:meth:`from_pem`), a callable returning a key or
    PEM bytes each time a token is minted (a secret manager; :meth:`from_callable`), or
    are generated (:meth:`generate`, for development and tests).

    Example::

        import flowtrace as ft

        signer = ft.trust.Signer.generate(kid="edge-2026-12")
        assert signer.alg == "EdDSA"
        assert signer.public_jwk()["kid"] == "edge-2026-12"
    """

    __slots__ = ("_key", "_loader", "alg", "kid")

    def __init__(self, key: PrivateKey, *, kid: str) -> None:
        if not isinstance(kid, str) or not kid or len(kid) > 128:
            raise TrustKeyError("kid must be a non-empty string of at most 128 characters")
        self.alg: str = _alg_of(key)
        self.kid: str = kid
        self._key: PrivateKey | None = key
        self._loader: Callable[[], PrivateKey | bytes] | None = None

    @classmethod
    def generate(cls, *, kid: str, alg: str = "EdDSA") -> Signer:
        """A fresh key for ``alg`` (``EdDSA`` or ``ES256``).

        Example::

            import flowtrace as ft

            signer = ft.trust.Signer.generate(kid="k1", alg="ES256")
        """
        if alg == "EdDSA":
            return cls(ed25519.Ed25519PrivateKey.generate(), kid=kid)
        if alg == "ES256":
            return cls(ec.generate_private_key(ec.SECP256R1()), kid=kid)
        raise TrustKeyError(f"alg {alg!r} is not one of {', '.join(ALGORITHMS)}")

    @classmethod
    def from_pem(
        cls, source: str | Path | bytes, *, kid: str, password: bytes | None = None
    ) -> Signer:
        """A signer from PEM bytes or the path of a PEM file.

        Example::

            import flowtrace as ft

            pem = ft.trust.Signer.generate(kid="k1").private_pem()
            signer = ft.trust.Signer.from_pem(pem, kid="k1")
        """
        if isinstance(source, bytes):
            data = source
        else:
            try:
                data = Path(source).read_bytes()
            except OSError as exc:
                raise TrustKeyError(f"cannot read the signing key {source}: {exc}") from exc
        return cls(_load_private(data, password), kid=kid)

    @classmethod
    def from_callable(cls, loader: Callable[[], PrivateKey | bytes], *, kid: str) -> Signer:
        """A signer asking ``loader`` for the key (or its PEM) at each mint.

        Example::

            import flowtrace as ft

            key = ft.trust.Signer.generate(kid="k1").private_pem()
            signer = ft.trust.Signer.from_callable(lambda: key, kid="k1")
        """
        signer = cls(_resolve(loader), kid=kid)
        signer._key = None
        signer._loader = loader
        return signer

    def key(self) -> PrivateKey:
        """The private key to sign with now (asks the loader, if any).

        Example::

            import flowtrace as ft

            signer = ft.trust.Signer.generate(kid="k1")
            assert signer.key() is signer.key()
        """
        if self._key is not None:
            return self._key
        assert self._loader is not None
        key = _resolve(self._loader)
        if _alg_of(key) != self.alg:
            raise TrustKeyError(f"the key loader for kid {self.kid!r} changed algorithm")
        return key

    def public_key(self) -> PublicKey:
        """The public half, for verifiers.

        Example::

            import flowtrace as ft

            public = ft.trust.Signer.generate(kid="k1").public_key()
        """
        return self.key().public_key()

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK with ``kid``, ``alg`` and ``use`` set.

        Example::

            import flowtrace as ft

            jwk = ft.trust.Signer.generate(kid="k1").public_jwk()
            assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")
        """
        algorithm = jwt().get_algorithm_by_name(self.alg)
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.public_key()))
        jwk.update(kid=self.kid, alg=self.alg, use="sig")
        return jwk

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (store it as a secret).

        Example::

            import flowtrace as ft

            pem = ft.trust.Signer.generate(kid="k1").private_pem()
            assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
        """
        return self.key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _resolve(loader: Callable[[], PrivateKey | bytes]) -> PrivateKey:
    value = loader()
    if isinstance(value, bytes):
        return _load_private(value, None)
    _alg_of(value)
    return value


def jwks(*keys: Signer | Mapping[str, Any]) -> dict[str, Any]:
    """A JWKS (``{"keys": [...]}``) of the public keys of signers or public JWKs.

    Publish it to verifiers; during rotation it holds the old and the new key.

    Example::

        import flowtrace as ft

        old, new = ft.trust.Signer.generate(kid="k1"), ft.trust.Signer.generate(kid="k2")
        document = ft.trust.jwks(old, new)
        assert [key["kid"] for key in document["keys"]] == ["k1", "k2"]
    """
    out: list[dict[str, Any]] = []
    for key in keys:
        out.append(key.public_jwk() if isinstance(key, Signer) else dict(key))
    public_keys({"keys": out})  # validate what is published
    return {"keys": out}


def public_keys(
    document: Mapping[str, Any] | Iterable[Mapping[str, Any]],
) -> dict[str, tuple[str, PublicKey]]:
    """``kid -> (alg, public key)`` from a JWKS; refuses private, symmetric and RSA keys.

    Example::

        import flowtrace as ft

        keys = ft.trust.public_keys(ft.trust.jwks(ft.trust.Signer.generate(kid="k1")))
        assert keys["k1"][0] == "EdDSA"
    """
    entries = document.get("keys") if isinstance(document, Mapping) else list(document)
    if not isinstance(entries, list):
        raise TrustKeyError('a JWKS is a mapping with a "keys" list')
    module = jwt()
    out: dict[str, tuple[str, PublicKey]] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise TrustKeyError("each JWKS entry must be a JSON object")
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TrustKeyError("every JWKS key needs a kid: tokens name their key by it")
        if "d" in entry:
            raise TrustKeyError(f"JWKS key {kid!r} holds private material; publish public keys")
        kty, crv = entry.get("kty"), entry.get("crv")
        if (kty, crv) == ("OKP", "Ed25519"):
            alg = "EdDSA"
        elif (kty, crv) == ("EC", "P-256"):
            alg = "ES256"
        else:
            raise TrustKeyError(
                f"JWKS key {kid!r} is {kty}/{crv}; only OKP/Ed25519 and EC/P-256 are accepted"
            )
        if entry.get("alg", alg) != alg:
            raise TrustKeyError(f"JWKS key {kid!r} declares alg {entry.get('alg')!r}, not {alg}")
        if kid in out:
            raise TrustKeyError(f"JWKS names kid {kid!r} twice")
        try:
            key = module.get_algorithm_by_name(alg).from_jwk(dict(entry))
        except (module.exceptions.InvalidKeyError, ValueError, KeyError, TypeError) as exc:
            raise TrustKeyError(f"JWKS key {kid!r} is not a valid {alg} key: {exc}") from exc
        if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
            raise TrustKeyError(f"JWKS key {kid!r} is not a public key")
        out[kid] = (alg, key)
    return out
