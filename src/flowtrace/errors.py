"""Every error flowtrace raises, in one tree rooted at :class:`FlowtraceError`.

Each message says what was wrong and what to do about it. Errors that describe bad
input also subclass the built-in they resemble, so ``except ValueError`` keeps working.

::

    FlowtraceError
    ├── ConfigError (ValueError)                 bad flowtrace.configure(...) / settings
    ├── MissingExtraError (ImportError)          optional dependency not installed
    ├── ContextError
    │   ├── InvalidContextValueError (ValueError)    a field value is too long / has control chars
    │   ├── MissingTenantError                       a tenant is required and none is set
    │   ├── TenantSwitchError                        another tenant entered in a tenant scope
    │   ├── TenantMismatchError                      carrier tenant differs from the resolved tenant
    │   ├── TenantNotAllowedError                    consumer got a tenant outside its allow-list
    │   └── ContextPropagationError (ValueError)     malformed / oversized carrier
    ├── ScrubError
    │   ├── SchemaError (ValueError)                 invalid classification schema
    │   └── ScrubBudgetExceeded                      internal: a value blew its time/size budget
    ├── CryptoError
    │   ├── KeyProviderError
    │   │   ├── KeyProviderUnavailable               KMS down/throttled after retries
    │   │   └── UnknownKeyError (KeyError)           no such key id / DEK version
    │   ├── KeyDestroyedError                        the DEK was shredded: data unrecoverable
    │   ├── KeyRetiredError                          version below the minimum decryption version
    │   ├── MissingSubjectError                      per-subject keys asked for, no subject known
    │   └── TokenError (ValueError)
    │       ├── MalformedTokenError                  not a flowtrace token / truncated / garbage
    │       ├── UnsupportedTokenVersionError         token format version not understood
    │       ├── TamperedTokenError                   authentication failed (edited or moved)
    │       ├── WrongTenantError                     token belongs to another tenant
    │       └── WrongFieldError                      token belongs to another field
    ├── LineageError
    │   ├── LineageBufferError                       durable buffer unusable / corrupted
    │   ├── LineageBufferFullError                   buffer at its bound (overflow="raise")
    │   └── PseudonymKeyError                        a subject was given, no pseudonym key
    ├── AuditError
    │   ├── AuditWriteError                          a record could not be made durable
    │   ├── AuditCorruptedError (ValueError)         unparseable audit file / torn line
    │   └── AuditVerificationError                   the chain does not verify
    │       ├── RecordModifiedError
    │       ├── RecordDeletedError
    │       ├── RecordInsertedError
    │       ├── RecordReorderedError
    │       ├── TruncationError
    │       └── CheckpointSignatureError
    └── MapError
        ├── MapSourceError (ValueError)          unreadable span / OTLP / audit / lineage source
        ├── DeclaredMapError (ValueError)        invalid declared map file; names the bad key
        ├── MapCheckError (AssertionError)       map check found drift (pytest assertion)
        └── ResidencyViolationError              a send to a region the data may not reach

Verification and decryption never return ``False``: they raise one of these.
"""

from __future__ import annotations

__all__ = [
    "AuditCorruptedError",
    "AuditError",
    "AuditVerificationError",
    "AuditWriteError",
    "CheckpointSignatureError",
    "ConfigError",
    "ContextError",
    "ContextPropagationError",
    "CryptoError",
    "DeclaredMapError",
    "FlowtraceError",
    "InvalidContextValueError",
    "KeyDestroyedError",
    "KeyProviderError",
    "KeyProviderUnavailable",
    "KeyRetiredError",
    "LineageBufferError",
    "LineageBufferFullError",
    "LineageError",
    "MalformedTokenError",
    "MapCheckError",
    "MapError",
    "MapSourceError",
    "MissingExtraError",
    "MissingSubjectError",
    "MissingTenantError",
    "PseudonymKeyError",
    "RecordDeletedError",
    "RecordInsertedError",
    "RecordModifiedError",
    "RecordReorderedError",
    "ResidencyViolationError",
    "SchemaError",
    "ScrubBudgetExceeded",
    "ScrubError",
    "TamperedTokenError",
    "TenantMismatchError",
    "TenantNotAllowedError",
    "TenantSwitchError",
    "TokenError",
    "TruncationError",
    "UnknownKeyError",
    "UnsupportedTokenVersionError",
    "WrongFieldError",
    "WrongTenantError",
    "require_extra",
]


class FlowtraceError(Exception):
    """Root of every error flowtrace raises."""


class ConfigError(FlowtraceError, ValueError):
    """flowtrace was configured with an invalid value."""


class MissingExtraError(FlowtraceError, ImportError):
    """An optional dependency is needed; the message names the exact ``pip install``."""

    def __init__(self, extra: str, module: str, feature: str) -> None:
        self.extra = extra
        self.module = module
        super().__init__(
            f"{feature} needs the '{module}' package, which is not installed. "
            f"Install it with: pip install 'flowtrace[{extra}]'"
        )


def require_extra(module: str, extra: str, feature: str) -> object:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``flowtrace[extra]``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(extra, module, feature) from exc


# --- context ------------------------------------------------------------------------------


class ContextError(FlowtraceError):
    """Base for flow-context errors."""


class InvalidContextValueError(ContextError, ValueError):
    """A flow-context field has an invalid value; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"invalid flow context field {field!r}: {problem}")


class MissingTenantError(ContextError):
    """A tenant is required here and the current flow context has none."""


class TenantSwitchError(ContextError):
    """A different tenant was entered inside a tenant scope without ``cross_tenant``."""


class TenantMismatchError(ContextError):
    """The tenant named by an (untrusted) carrier differs from the resolved tenant."""


class TenantNotAllowedError(ContextError):
    """A consumer received a message for a tenant outside its allow-list."""


class ContextPropagationError(ContextError, ValueError):
    """A carrier (headers, message properties) is malformed or exceeds W3C limits."""


# --- scrubbing ----------------------------------------------------------------------------


class ScrubError(FlowtraceError):
    """Base for scrubbing errors."""


class SchemaError(ScrubError, ValueError):
    """A classification schema is invalid."""


class ScrubBudgetExceeded(ScrubError):
    """A value exceeded the scrubber's time or size budget (it is redacted, never passed)."""


# --- crypto -------------------------------------------------------------------------------


class CryptoError(FlowtraceError):
    """Base for field-encryption and key errors."""


class KeyProviderError(CryptoError):
    """Base for key-provider (KMS) errors."""


class KeyProviderUnavailable(KeyProviderError):
    """The key provider is down or throttling and retries are exhausted."""


class UnknownKeyError(KeyProviderError, KeyError):
    """No key with this id (or no DEK with this version) exists."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class KeyDestroyedError(CryptoError):
    """The data key was destroyed (crypto-shredded); the data is unrecoverable by design."""


class KeyRetiredError(CryptoError):
    """The token's key version is below the minimum decryption version; rewrap it."""


class MissingSubjectError(CryptoError):
    """Per-subject keys were asked for but no data subject was given or is in the context."""


class TokenError(CryptoError, ValueError):
    """Base for errors about an encrypted field token."""


class MalformedTokenError(TokenError):
    """The value is not a well-formed flowtrace token (garbage, truncated, bad encoding)."""


class UnsupportedTokenVersionError(TokenError):
    """The token's format version is not one this flowtrace understands."""


class TamperedTokenError(TokenError):
    """The token failed authentication: edited, or bound to another context."""


class WrongTenantError(TokenError):
    """The token belongs to another tenant than the current one."""


class WrongFieldError(TokenError):
    """The token was produced for another field."""


# --- lineage ------------------------------------------------------------------------------


class LineageError(FlowtraceError):
    """Base for lineage errors."""


class LineageBufferError(LineageError):
    """The local durable lineage buffer is unusable or corrupted."""


class LineageBufferFullError(LineageBufferError):
    """The durable buffer reached its bound and its overflow policy is ``"raise"``."""


class PseudonymKeyError(LineageError):
    """A data subject was given for lineage but no pseudonym key is configured (or it is bad)."""


# --- audit --------------------------------------------------------------------------------


class AuditError(FlowtraceError):
    """Base for audit-trail errors."""


class AuditWriteError(AuditError):
    """An audit record could not be written durably; the action must not proceed silently."""


class AuditCorruptedError(AuditError, ValueError):
    """An audit file cannot be parsed (e.g. a torn last line); run ``flowtrace audit recover``."""


class AuditVerificationError(AuditError):
    """The audit chain failed verification; ``sequence`` is the first bad record."""

    def __init__(self, message: str, sequence: int | None = None) -> None:
        self.sequence = sequence
        super().__init__(message)


class RecordModifiedError(AuditVerificationError):
    """A record's content does not match its hash."""


class RecordDeletedError(AuditVerificationError):
    """A sequence number is missing from the chain."""


class RecordInsertedError(AuditVerificationError):
    """A record appears that the chain does not account for."""


class RecordReorderedError(AuditVerificationError):
    """Records appear out of order."""


class TruncationError(AuditVerificationError):
    """The log ends before the last signed checkpoint says it should."""


class CheckpointSignatureError(AuditVerificationError):
    """A checkpoint signature does not verify with the given public key."""


# --- data-flow map -------------------------------------------------------------------------


class MapError(FlowtraceError):
    """Base for data-flow map errors."""


class MapSourceError(MapError, ValueError):
    """A map source (span file, OTLP file, lineage, audit log) cannot be read."""


class DeclaredMapError(MapError, ValueError):
    """The declared map file is invalid; the message names the bad key and what to write."""


class MapCheckError(MapError, AssertionError):
    """The observed map drifted from the declared one; ``findings`` holds what was found."""

    def __init__(self, message: str, findings: object = ()) -> None:
        super().__init__(message)
        self.findings = findings


class ResidencyViolationError(MapError):
    """Data of one region was about to be sent to a destination its region forbids.

    Raised *before* anything is sent; the refusal is recorded in the audit trail.
    """
