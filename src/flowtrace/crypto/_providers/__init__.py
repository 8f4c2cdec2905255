"""Key providers: who wraps and unwraps data keys under key-encryption keys (KEKs)."""

from __future__ import annotations

from ._aws import AwsKmsKeyProvider
from ._base import KeyProvider, RetryPolicy
from ._local import LocalKeyProvider

__all__ = ["AwsKmsKeyProvider", "KeyProvider", "LocalKeyProvider", "RetryPolicy"]
