"""AwsKmsKeyProvider: data keys wrapped by AWS KMS (``Encrypt``/``Decrypt``) via boto3.

boto3 is the ``aws`` extra and is imported only when this provider builds its own client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ...errors import KeyProviderError, KeyProviderUnavailableError, UnknownKeyError, require_extra

__all__ = ["AwsKmsKeyProvider"]

_TRANSIENT: Final = frozenset(
    {
        "DependencyTimeoutException",
        "InternalFailure",
        "KMSInternalException",
        "KeyUnavailableException",
        "LimitExceededException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ThrottlingException",
        "Throttling",
    }
)


class AwsKmsKeyProvider:
    """A :class:`~flowtrace.crypto.KeyProvider` backed by AWS KMS.

    Pass your own boto3 KMS client (``boto3.client("kms", region_name=...)``) so retries,
    credentials and endpoints stay yours; KEK ids are KMS key ids, ARNs or aliases. The
    encryption context is sent to KMS (and appears in CloudTrail): flowtrace puts only
    tenant and key ids in it.

    Example::

        import boto3

        from flowtrace.crypto import AwsKmsKeyProvider, KeyVault

        kms = boto3.client("kms", region_name="eu-west-1")
        vault = KeyVault(AwsKmsKeyProvider(kms), kek_id="alias/flowtrace-kek")

    ``region`` (for the residency guard) is the client's AWS region (``eu-west-1``) unless
    given; name it as your residency rules do (``region="eu"``).
    """

    def __init__(
        self, client: Any = None, *, region_name: str | None = None, region: str | None = None
    ) -> None:
        if client is None:
            boto3: Any = require_extra("boto3", "aws", "AwsKmsKeyProvider")
            client = boto3.client("kms", region_name=region_name)
        self._client = client
        meta = getattr(client, "meta", None)
        client_region = getattr(meta, "region_name", None) or region_name
        self.region: str | None = region or (
            client_region if isinstance(client_region, str) else None
        )
        """Where this KMS runs, for the residency guard."""

    def wrap_key(self, kek_id: str, key: bytes, encryption_context: Mapping[str, str]) -> bytes:
        """KMS ``Encrypt`` of the data key under ``kek_id``."""
        try:
            response = self._client.encrypt(
                KeyId=kek_id, Plaintext=key, EncryptionContext=dict(encryption_context)
            )
        except Exception as exc:
            raise _translate(exc, "Encrypt", kek_id) from exc
        return bytes(response["CiphertextBlob"])

    def unwrap_key(
        self, kek_id: str, wrapped: bytes, encryption_context: Mapping[str, str]
    ) -> bytes:
        """KMS ``Decrypt`` of a wrapped data key (``KeyId`` pinned to ``kek_id``)."""
        try:
            response = self._client.decrypt(
                CiphertextBlob=wrapped, KeyId=kek_id, EncryptionContext=dict(encryption_context)
            )
        except Exception as exc:
            raise _translate(exc, "Decrypt", kek_id) from exc
        return bytes(response["Plaintext"])


def _translate(exc: Exception, operation: str, kek_id: str) -> Exception:
    """Map a botocore error onto the flowtrace key-provider errors."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - a client exists, so botocore does
        return KeyProviderError(f"KMS {operation} failed: {type(exc).__name__}")
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _TRANSIENT or status >= 500:
            return KeyProviderUnavailableError(f"KMS {operation} is unavailable ({code or status})")
        if code == "NotFoundException":
            return UnknownKeyError(f"KMS has no key {kek_id!r} ({operation}: {code})")
        return KeyProviderError(f"KMS refused {operation} with key {kek_id!r}: {code}")
    if isinstance(exc, BotoCoreError):
        return KeyProviderUnavailableError(
            f"KMS {operation} could not be reached: {type(exc).__name__}"
        )
    return exc
