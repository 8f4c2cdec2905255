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
    │   ├── TenantScopeError                         the tenant cannot be scoped to this operation
    │   └── ContextPropagationError (ValueError)     malformed / oversized carrier
    ├── DatabaseCheckError                       RLS would not isolate tenants (db check findings)
    ├── TenantRoutingError                       every tenant pool is busy (bound reached)
    ├── MigrationError                           a tenant-schema migration failed (resumable)
    ├── ScrubError
    │   ├── SchemaError (ValueError)                 invalid classification schema
    │   └── ScrubBudgetExceededError                 internal: a value blew its time/size budget
    ├── CryptoError
    │   ├── KeyProviderError
    │   │   ├── KeyProviderUnavailableError          KMS down/throttled after retries
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
    │       ├── CheckpointSignatureError
    │       ├── ForgedRecordError                    a record no trusted writer key vouches for
    │       └── OversizedLineError (ValueError)      a line longer than the configured bound
    ├── MapError
    │   ├── MapSourceError (ValueError)          unreadable span / OTLP / audit / lineage source
    │   ├── DeclaredMapError (ValueError)        invalid declared map file; names the bad key
    │   ├── MapCheckError (AssertionError)       map check found drift (pytest assertion)
    │   └── ResidencyViolationError              a send to a region the data may not reach
    ├── PrivacyError
    │   ├── ErasureError                         an erasure step failed after its retries
    │   ├── ErasureVerificationError             erased data still readable somewhere
    │   └── SignatureError (ValueError)          a bundle / receipt signature does not verify
    └── TrustError
        ├── TrustKeyError (ValueError)           unusable signing/verification key or JWKS
        ├── MissingTxnTokenError                 trust="required" and no Txn-Token came
        └── TxnTokenError (ValueError)           a transaction token was refused
            ├── MalformedTxnTokenError               truncated / garbled / not a JWT
            ├── TxnTokenAlgorithmError               alg not allowed (none, HS/RS swaps)
            ├── UnknownTxnKeyError                   kid not in the JWKS (or revoked)
            ├── TxnTokenSignatureError               signature does not verify
            ├── TxnTokenAudienceError                minted for another trust domain
            ├── TxnTokenExpiredError                 exp passed (beyond the allowed skew)
            └── TxnTokenContextError                 claims differ from the baggage

Verification and decryption never return ``False``: they raise one of these.

Each error's example shows one way to meet it. The examples run after this set-up: a
field token of tenant ``acme`` and a signed audit log of three records.

Set-up::

    from pathlib import Path

    import flowtrace as ft
    from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider, RetryPolicy
    from flowtrace.errors import *

    vault = KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek")
    enc = FieldEncryptor(vault)
    with ft.context(tenant="acme"):
        token = enc.encrypt("123-45-6789", field="ssn")

    key = ft.audit.generate_key()
    log = ft.audit.AuditLog("audit.jsonl", signing_key=key)
    for number in range(3):
        log.append("report.export", resource=str(number))
    log.close()
    lines = Path("audit.jsonl").read_text().splitlines(keepends=True)
"""

from __future__ import annotations

from typing import Any

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
    "DatabaseCheckError",
    "DeclaredMapError",
    "ErasureError",
    "ErasureVerificationError",
    "FlowtraceError",
    "ForgedRecordError",
    "InvalidContextValueError",
    "KeyDestroyedError",
    "KeyProviderError",
    "KeyProviderUnavailableError",
    "KeyRetiredError",
    "LineageBufferError",
    "LineageBufferFullError",
    "LineageError",
    "MalformedTokenError",
    "MalformedTxnTokenError",
    "MapCheckError",
    "MapError",
    "MapSourceError",
    "MigrationError",
    "MissingExtraError",
    "MissingSubjectError",
    "MissingTenantError",
    "MissingTxnTokenError",
    "OversizedLineError",
    "PrivacyError",
    "PseudonymKeyError",
    "RecordDeletedError",
    "RecordInsertedError",
    "RecordModifiedError",
    "RecordReorderedError",
    "ResidencyViolationError",
    "SchemaError",
    "ScrubBudgetExceededError",
    "ScrubError",
    "SignatureError",
    "TamperedTokenError",
    "TenantMismatchError",
    "TenantNotAllowedError",
    "TenantRoutingError",
    "TenantScopeError",
    "TenantSwitchError",
    "TokenError",
    "TruncationError",
    "TrustError",
    "TrustKeyError",
    "TxnTokenAlgorithmError",
    "TxnTokenAudienceError",
    "TxnTokenContextError",
    "TxnTokenError",
    "TxnTokenExpiredError",
    "TxnTokenSignatureError",
    "UnknownKeyError",
    "UnknownTxnKeyError",
    "UnsupportedTokenVersionError",
    "WrongFieldError",
    "WrongTenantError",
    "require_extra",
]


class FlowtraceError(Exception):
    """Root of every error flowtrace raises.

    Example::

        try:
            ft.require_tenant()
        except ft.FlowtraceError as error:               # every flowtrace error
            print(type(error).__name__, error)
    """


class ConfigError(FlowtraceError, ValueError):
    """flowtrace was configured with an invalid value.

    Example::

        try:
            ft.configure(service="")
        except ft.ConfigError as error:                  # also a ValueError
            print(error)    # configure(service=...) must be a non-empty str
    """


class MissingExtraError(FlowtraceError, ImportError):
    """An optional dependency is needed; the message names the exact ``pip install``.

    Example::

        try:
            require_extra("no_such_module", "yaml", "Schema.from_yaml")
        except MissingExtraError as error:               # also an ImportError
            print(error)    # ... Install it with: pip install 'flowtrace-sdk[yaml]'
    """

    def __init__(self, extra: str, module: str, feature: str) -> None:
        self.extra = extra
        self.module = module
        super().__init__(
            f"{feature} needs the '{module}' package, which is not installed. "
            f"Install it with: pip install 'flowtrace-sdk[{extra}]'"
        )


def require_extra(module: str, extra: str, feature: str) -> object:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``flowtrace-sdk[extra]``.

    The distribution is ``flowtrace-sdk`` (``flowtrace`` on PyPI is another project), so
    the message names ``pip install 'flowtrace-sdk[extra]'``.

    Example::

        yaml = require_extra("yaml", "yaml", "Schema.from_yaml")   # the module, or raises
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(extra, module, feature) from exc


# --- context ------------------------------------------------------------------------------


class ContextError(FlowtraceError):
    """Base for flow-context errors.

    Example::

        try:
            with ft.context(tenant="acme"), ft.context(tenant="globex"):
                pass
        except ft.ContextError as error:                 # any flow-context problem
            print(type(error).__name__)                  # TenantSwitchError
    """


class InvalidContextValueError(ContextError, ValueError):
    """A flow-context field has an invalid value; ``field`` names it.

    Example::

        try:
            ft.FlowContext(tenant="acme" + chr(10))      # a newline: control characters refused
        except ft.InvalidContextValueError as error:
            assert error.field == "tenant"
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"invalid flow context field {field!r}: {problem}")


class MissingTenantError(ContextError):
    """A tenant is required here and the current flow context has none.

    Example::

        try:
            ft.require_tenant()                          # outside any tenant scope
        except ft.MissingTenantError as error:
            print(error)
    """


class TenantSwitchError(ContextError):
    """A different tenant was entered inside a tenant scope without ``cross_tenant``.

    Example::

        with ft.context(tenant="acme"):
            try:
                with ft.context(tenant="globex"):        # not inside cross_tenant(...)
                    pass
            except ft.TenantSwitchError as error:
                print(error)
    """


class TenantMismatchError(ContextError):
    """The tenant named by an (untrusted) carrier differs from the resolved tenant.

    Example::

        get = ft.handler(tenant=lambda r: r["tenant"], carrier=lambda r: r["headers"])(print)
        spoofed = {"tenant": "acme", "headers": {"baggage": "flowtrace.tenant=globex"}}
        try:
            get(spoofed)
        except ft.TenantMismatchError as error:
            print(error)
    """


class TenantNotAllowedError(ContextError):
    """A consumer received a message for a tenant outside its allow-list.

    Example::

        from types import SimpleNamespace

        on_invoice = ft.consumer(allowed_tenants={"acme"})(print)
        try:
            on_invoice(SimpleNamespace(headers={"baggage": "flowtrace.tenant=globex"}))
        except ft.TenantNotAllowedError as error:
            print(error)
    """


class TenantScopeError(ContextError):
    """An operation cannot carry the tenant as asked (e.g. an autocommit statement).

    Example::

        from flowtrace.integrations.psycopg import TenantConnection

        with TenantConnection.connect("postgresql://app@db.internal/app") as conn:
            with ft.context(tenant="acme"):
                try:
                    conn.execute("SELECT 1")          # no transaction: no BEGIN to carry it
                except TenantScopeError as error:
                    print(error)
                with conn.transaction():
                    conn.execute("SELECT 1")          # the tenant rides in BEGIN
    """


class ContextPropagationError(ContextError, ValueError):
    """A carrier (headers, message properties) is malformed or exceeds W3C limits.

    Example::

        try:
            ft.extract({"baggage": "flowtrace.tenant=%zz"})   # a bad percent-escape
        except ft.ContextPropagationError as error:      # also a ValueError
            print(error)
    """


class DatabaseCheckError(FlowtraceError):
    """Row-level security would not isolate tenants; ``findings`` lists every reason.

    Example::

        from flowtrace.integrations.dbcheck import require_rls

        try:
            require_rls("postgresql://app@db.internal/app", tables=["invoices"])
        except DatabaseCheckError as error:
            for finding in error.findings:
                print(finding)
    """

    def __init__(self, findings: list[Any]) -> None:
        self.findings = findings
        super().__init__(
            "row-level security would not isolate tenants:\n  - "
            + "\n  - ".join(str(f) for f in findings)
            + "\nFix each item (docs/database.md shows a complete set-up)."
        )


class TenantRoutingError(FlowtraceError):
    """No pool can serve the tenant's database without exceeding the configured bound.

    Example::

        from flowtrace.integrations.routing import TenantRouter

        router = TenantRouter(lambda tenant: f"postgresql://app@db.internal/{tenant}",
                              max_pools=8)
        with ft.context(tenant="acme"):
            try:
                with router.connection() as conn:
                    conn.execute("SELECT 1")
            except TenantRoutingError as error:     # all 8 pools busy with other tenants
                print(error)
    """


class MigrationError(FlowtraceError):
    """A migration of tenant schemas failed; the message names the schema. Run it again to
    resume (schemas already migrated are skipped).

    Example::

        from flowtrace.integrations.migrations import migrate_tenant_schemas

        try:
            migrate_tenant_schemas("postgresql://owner@db.internal/app", "0042-note",
                                   "ALTER TABLE invoices ADD COLUMN note text")
        except MigrationError as error:
            print(error)                            # fix, then run again to resume
    """


# --- scrubbing ----------------------------------------------------------------------------


class ScrubError(FlowtraceError):
    """Base for scrubbing errors.

    Example::

        try:
            ft.Scrubber(schema={"diagnosis": "bogus"})
        except ft.ScrubError as error:                   # any scrubbing problem
            print(type(error).__name__)                  # SchemaError
    """


class SchemaError(ScrubError, ValueError):
    """A classification schema is invalid.

    Example::

        try:
            ft.Schema.from_dict({"email": "secret-ish"})     # not a level or category
        except ft.SchemaError as error:                  # also a ValueError
            print(error)
    """


class ScrubBudgetExceededError(ScrubError):
    """A value exceeded the scrubber's time or size budget (it is redacted, never passed).

    Example::

        # Internal: the scrubber catches it and redacts the value; callers never see it.
        assert issubclass(ScrubBudgetExceededError, ScrubError)
    """


# --- crypto -------------------------------------------------------------------------------


class CryptoError(FlowtraceError):
    """Base for field-encryption and key errors.

    Example::

        with ft.context(tenant="globex"):
            try:
                enc.decrypt(token, field="ssn")          # acme's token
            except CryptoError as error:                 # any key or token problem
                print(type(error).__name__)              # WrongTenantError
    """


class KeyProviderError(CryptoError):
    """Base for key-provider (KMS) errors.

    Example::

        try:
            LocalKeyProvider.generate("kek").wrap_key("other-kek", bytes(32), {})
        except KeyProviderError as error:                # any refusal by the KMS
            print(error)
    """


class KeyProviderUnavailableError(KeyProviderError):
    """The key provider is down or throttling and retries are exhausted.

    Example::

        class DownKms:                                   # a KMS that times out
            def wrap_key(self, kek_id, key, encryption_context):
                raise KeyProviderUnavailableError("KMS timed out")

            unwrap_key = wrap_key

        down = FieldEncryptor(KeyVault(DownKms(), kek_id="kek", retry=RetryPolicy(base_delay=0)))
        with ft.context(tenant="acme"):
            try:
                down.encrypt("x", field="note")          # retried, then fails closed
            except KeyProviderUnavailableError as error:
                print(error)
    """


class UnknownKeyError(KeyProviderError, KeyError):
    """No key with this id (or no DEK with this version) exists.

    Example::

        vault = KeyVault(LocalKeyProvider.generate("kek"), kek_id="no-such-kek")
        with ft.context(tenant="acme"):
            try:
                FieldEncryptor(vault).encrypt("x", field="note")
            except UnknownKeyError as error:             # also a KeyError
                print(error)
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class KeyDestroyedError(CryptoError):
    """The data key was destroyed (crypto-shredded); the data is unrecoverable by design.

    Example::

        with ft.context(tenant="acme"):
            enc.shred(reason="tenant offboarding")
            try:
                enc.decrypt(token, field="ssn")
            except KeyDestroyedError as error:           # unrecoverable, by design
                print(error)
    """


class KeyRetiredError(CryptoError):
    """The token's key version is below the minimum decryption version; rewrap it.

    Example::

        vault.rotate("acme")
        vault.retire("acme", below=2)                    # version 1 may no longer decrypt
        with ft.context(tenant="acme"):
            try:
                enc.decrypt(token, field="ssn")
            except KeyRetiredError as error:
                print(error)
    """


class MissingSubjectError(CryptoError):
    """Per-subject keys were asked for but no data subject was given or is in the context.

    Example::

        with ft.context(tenant="acme"):                  # no subject= here or in the context
            try:
                FieldEncryptor(vault, subject_keys=True).encrypt("flu", field="diagnosis")
            except MissingSubjectError as error:
                print(error)
    """


class TokenError(CryptoError, ValueError):
    """Base for errors about an encrypted field token.

    Example::

        with ft.context(tenant="acme"):
            try:
                enc.decrypt("not a token", field="ssn")
            except TokenError as error:                  # any bad token; also a ValueError
                print(type(error).__name__)              # MalformedTokenError
    """


class MalformedTokenError(TokenError):
    """The value is not a well-formed flowtrace token (garbage, truncated, bad encoding).

    Example::

        with ft.context(tenant="acme"):
            try:
                enc.decrypt(token[:20], field="ssn")     # truncated
            except MalformedTokenError as error:
                print(error)
    """


class UnsupportedTokenVersionError(TokenError):
    """The token's format version is not one this flowtrace understands.

    Example::

        with ft.context(tenant="acme"):
            try:
                enc.decrypt("Bw" + token[2:], field="ssn")   # claims format version 7
            except UnsupportedTokenVersionError as error:
                print(error)
    """


class TamperedTokenError(TokenError):
    """The token failed authentication: edited, or bound to another context.

    Example::

        edited = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        with ft.context(tenant="acme"):
            try:
                enc.decrypt(edited, field="ssn")
            except TamperedTokenError as error:
                print(error)
    """


class WrongTenantError(TokenError):
    """The token belongs to another tenant than the current one.

    Example::

        with ft.context(tenant="globex"):
            try:
                enc.decrypt(token, field="ssn")          # acme's token
            except WrongTenantError as error:
                print(error)
    """


class WrongFieldError(TokenError):
    """The token was produced for another field.

    Example::

        with ft.context(tenant="acme"):
            try:
                enc.decrypt(token, field="phone")        # made for field "ssn"
            except WrongFieldError as error:
                print(error)
    """


# --- lineage ------------------------------------------------------------------------------


class LineageError(FlowtraceError):
    """Base for lineage errors.

    Example::

        with ft.context(tenant="acme"):
            try:                                         # a subject, but no pseudonym key
                ft.lineage.record("enrich", inputs="crm#1", outputs="dwh#1", subjects="ana@x.io")
            except LineageError as error:                # any lineage problem
                print(type(error).__name__)              # PseudonymKeyError
    """


class LineageBufferError(LineageError):
    """The local durable lineage buffer is unusable or corrupted.

    Example::

        Path("lineage").write_text("a file, not a directory")
        try:
            ft.lineage.LineageBuffer("lineage")
        except LineageBufferError as error:
            print(error)
    """


class LineageBufferFullError(LineageBufferError):
    """The durable buffer reached its bound and its overflow policy is ``"raise"``.

    Example::

        buffer = ft.lineage.LineageBuffer("lineage", max_bytes=200, overflow="raise")
        edge = ft.lineage.LineageEdge(id="e-1", name="copy", inputs=("a",), outputs=("b",))
        try:
            for _ in range(10):                          # nothing ships them: the bound is hit
                buffer.append(edge)
        except LineageBufferFullError as error:
            print(error)
        buffer.close()
    """


class PseudonymKeyError(LineageError):
    """A data subject was given for lineage but no pseudonym key is configured (or it is bad).

    Example::

        with ft.context(tenant="acme"):
            try:                                         # raw subjects are never recorded
                ft.lineage.record("enrich", inputs="crm#1", outputs="dwh#1", subjects="ana@x.io")
            except PseudonymKeyError as error:
                print(error)    # ... LineageConfig(pseudonym_key=...)
    """


# --- audit --------------------------------------------------------------------------------


class AuditError(FlowtraceError):
    """Base for audit-trail errors.

    Example::

        log = ft.audit.AuditLog("other.jsonl")
        log.close()
        try:
            log.append("report.export")
        except AuditError as error:                      # any audit-trail problem
            print(type(error).__name__)                  # AuditWriteError
    """


class AuditWriteError(AuditError):
    """An audit record could not be written durably; the action must not proceed silently.

    Example::

        log = ft.audit.AuditLog("other.jsonl")
        log.close()
        try:
            log.append("report.export")                  # the action must not go on silently
        except AuditWriteError as error:
            print(error)
    """


class AuditCorruptedError(AuditError, ValueError):
    """An audit file cannot be parsed (e.g. a torn last line); run ``flowtrace audit recover``.

    Example::

        with open("audit.jsonl", "ab") as file:
            file.write(b'{"hash":"tor')                  # a writer crashed mid-line
        try:
            ft.audit.AuditLog("audit.jsonl")
        except AuditCorruptedError as error:             # run `flowtrace audit recover` first
            print(error)
    """


class AuditVerificationError(AuditError):
    """The audit chain failed verification; ``sequence`` is the first bad record.

    Example::

        Path("audit.jsonl").write_text(lines[0] + lines[2])           # record 1 deleted
        try:
            ft.audit.verify("audit.jsonl", public_key=key.public_key())
        except AuditVerificationError as error:          # any broken chain or checkpoint
            assert error.sequence == 1                   # the first bad record
    """

    def __init__(self, message: str, sequence: int | None = None) -> None:
        self.sequence = sequence
        super().__init__(message)


class RecordModifiedError(AuditVerificationError):
    """A record's content does not match its hash.

    Example::

        edited = lines[1].replace('"resource":"1"', '"resource":"9"')
        Path("audit.jsonl").write_text(lines[0] + edited + lines[2])
        try:
            ft.audit.verify("audit.jsonl", public_key=key.public_key())
        except RecordModifiedError as error:
            print(error)    # record 1 was modified: its content does not match its hash
    """


class RecordDeletedError(AuditVerificationError):
    """A sequence number is missing from the chain.

    Example::

        Path("audit.jsonl").write_text(lines[0] + lines[2])
        try:
            ft.audit.verify("audit.jsonl", public_key=key.public_key())
        except RecordDeletedError as error:
            print(error)    # record 1 is missing: the log jumps past it
    """


class RecordInsertedError(AuditVerificationError):
    """A record appears that the chain does not account for.

    Example::

        Path("audit.jsonl").write_text(lines[0] + lines[1] + lines[1] + lines[2])
        try:
            ft.audit.verify("audit.jsonl", public_key=key.public_key())
        except RecordInsertedError as error:
            print(error)
    """


class RecordReorderedError(AuditVerificationError):
    """Records appear out of order.

    Example::

        Path("audit.jsonl").write_text(lines[0] + lines[2] + lines[1])
        try:
            ft.audit.verify("audit.jsonl", public_key=key.public_key())
        except RecordReorderedError as error:
            print(error)    # record 1 appears after record 2: records were reordered
    """


class TruncationError(AuditVerificationError):
    """The log ends before the last signed checkpoint says it should.

    Example::

        Path("audit.jsonl").write_text(lines[0] + lines[1])           # the tail cut off
        try:
            ft.audit.verify("audit.jsonl", public_key=key.public_key())
        except TruncationError as error:                 # the checkpoint covers 3 records
            print(error)
    """


class CheckpointSignatureError(AuditVerificationError):
    """A checkpoint signature does not verify with the given public key.

    Example::

        try:
            ft.audit.verify("audit.jsonl", public_key=ft.audit.generate_key().public_key())
        except CheckpointSignatureError as error:        # signed by someone else
            print(error)
    """


class ForgedRecordError(AuditVerificationError):
    """A record is not covered by a valid writer signature: someone without the key wrote it.

    Raised by :func:`flowtrace.audit.verify` (naming the first such record) and by a writer
    that finds such a record before its own: it refuses to chain after it.

    Example::

        try:                                             # e.g. a line an insider appended
            ft.audit.verify("audit.jsonl", public_key=key.public_key())
        except ForgedRecordError as error:               # names the forged sequence
            print(error.sequence, error)
    """


class OversizedLineError(AuditVerificationError, ValueError):
    """A line is longer than the configured bound; ``offset`` is where that line starts.

    Example::

        try:
            ft.audit.verify("audit.jsonl", public_key=key.public_key(), max_line_bytes=256)
        except OversizedLineError as error:              # read in bounded memory, refused
            print(error.offset, error)
    """

    def __init__(self, message: str, sequence: int | None = None, offset: int | None = None):
        self.offset = offset
        super().__init__(message, sequence)


# --- data-flow map -------------------------------------------------------------------------


class MapError(FlowtraceError):
    """Base for data-flow map errors.

    Example::

        try:
            ft.map.load_declared("no-such-map.toml")
        except MapError as error:                        # any map problem
            print(error)
    """


class MapSourceError(MapError, ValueError):
    """A map source (span file, OTLP file, lineage, audit log) cannot be read.

    Example::

        Path("spans.jsonl").write_text("not json\\n")
        try:
            ft.map.build(sources=["spans.jsonl"])
        except MapSourceError as error:                  # names the file and line
            print(error)
    """


class DeclaredMapError(MapError, ValueError):
    """The declared map file is invalid; the message names the bad key and what to write.

    Example::

        Path("map.toml").write_text('[systems.api]\\nregion = 42\\n')
        try:
            ft.map.load_declared("map.toml")
        except DeclaredMapError as error:                # also a ValueError
            print(error)
    """


class MapCheckError(MapError, AssertionError):
    """The observed map drifted from the declared one; ``findings`` holds what was found.

    Example::

        try:
            raise MapCheckError("1 finding: undeclared flow api -> newsletter", findings=[])
        except AssertionError as error:                  # so pytest reports it as a failure
            print(error)
    """

    def __init__(self, message: str, findings: object = ()) -> None:
        super().__init__(message)
        self.findings = findings


class ResidencyViolationError(MapError):
    """Data of one region was about to be sent to a destination its region forbids.

    Raised *before* anything is sent; the refusal is recorded in the audit trail.

    Example::

        ft.map.configure_residency(rules={"eu": ["eu"]},
                                   destinations={"rabbitmq/orders-us": "us"})
        try:
            with ft.context(tenant="acme", region="eu"):
                ft.map.guard_destination("rabbitmq/orders-us")   # before the publish
        except ResidencyViolationError as error:                  # nothing was sent
            print(error)
        ft.map.configure_residency()                              # back to no policy
    """


class PrivacyError(FlowtraceError):
    """Base for subject access and erasure errors (:mod:`flowtrace.privacy`).

    Example::

        try:
            ft.privacy.verify_signed({"flowtrace_privacy": 1}, public_key=key.public_key())
        except PrivacyError as error:                    # any privacy-operation problem
            print(error)
    """


class ErasureError(PrivacyError):
    """An erasure step still failed after its retries; the state file keeps what was done,
    so running the same erasure again resumes at this step.

    Example::

        try:
            raise ErasureError("step delete:pg/app failed 3 times: connection refused")
        except PrivacyError as error:
            print(error)
    """


class ErasureVerificationError(PrivacyError):
    """The verification pass after an erasure found the subject's data still readable;
    ``findings`` lists where.

    Example::

        try:
            raise ErasureVerificationError("1 finding: pg/app still returns rows", findings=[])
        except PrivacyError as error:
            print(error, error.findings)
    """

    def __init__(self, message: str, findings: object = ()) -> None:
        super().__init__(message)
        self.findings = findings


class SignatureError(PrivacyError, ValueError):
    """A signed subject-access bundle or erasure receipt does not verify (edited, unsigned,
    or signed by another key).

    Example::

        try:
            ft.privacy.verify_signed({"flowtrace_privacy": 1}, public_key=key.public_key())
        except SignatureError as error:                  # also a ValueError
            print(error)
    """


# --- trust (transaction tokens) -------------------------------------------------------------


class TrustError(FlowtraceError):
    """Base for transaction-token errors (:mod:`flowtrace.trust`): a hop refused its caller.

    Example::

        try:
            raise TxnTokenExpiredError("the Txn-Token expired 40 s ago")
        except TrustError as error:                      # every trust refusal
            print(error)
    """


class TrustKeyError(TrustError, ValueError):
    """A signing or verification key (PEM file, callable, JWKS entry) is unusable.

    Example::

        try:
            ft.trust.Signer.from_pem(b"not a key", kid="k1")
        except TrustKeyError as error:                   # also a ValueError
            print(error)
    """


class MissingTxnTokenError(TrustError):
    """A hop requires a transaction token (``trust="required"``) and none came.

    Example::

        try:
            raise MissingTxnTokenError("consumer 'orders': no Txn-Token header")
        except TrustError as error:
            print(error)
    """


class TxnTokenError(TrustError, ValueError):
    """A transaction token was presented and refused; the subclass says why.

    Example::

        verifier = ft.trust.Verifier({"keys": []}, audience="trust.example")
        try:
            verifier.verify("garbage")
        except TxnTokenError as error:                   # any refused token
            print(type(error).__name__)                  # MalformedTxnTokenError
    """


class MalformedTxnTokenError(TxnTokenError):
    """The token is not a compact JWS: truncated, garbled, or not a transaction token.

    Example::

        verifier = ft.trust.Verifier({"keys": []}, audience="trust.example")
        try:
            verifier.verify("eyJhbGciOi.truncated")
        except MalformedTxnTokenError as error:
            print(error)
    """


class TxnTokenAlgorithmError(TxnTokenError):
    """The token names an algorithm outside the allow-list (``none``, HS256, RS256...).

    Example::

        try:
            raise TxnTokenAlgorithmError("alg 'none' is not allowed")
        except TxnTokenError as error:
            print(error)
    """


class UnknownTxnKeyError(TxnTokenError):
    """The token's ``kid`` names no key of the verifier's JWKS (unknown or revoked).

    Example::

        try:
            raise UnknownTxnKeyError("kid 'old-1' is not in the JWKS")
        except TxnTokenError as error:
            print(error)
    """


class TxnTokenSignatureError(TxnTokenError):
    """The signature does not verify with the key the ``kid`` names (edited or forged).

    Example::

        try:
            raise TxnTokenSignatureError("signature does not verify")
        except TxnTokenError as error:
            print(error)
    """


class TxnTokenAudienceError(TxnTokenError):
    """The token was minted for another trust domain (``aud``).

    Example::

        try:
            raise TxnTokenAudienceError("aud 'other.example' is not 'trust.example'")
        except TxnTokenError as error:
            print(error)
    """


class TxnTokenExpiredError(TxnTokenError):
    """The token's ``exp`` passed, beyond the allowed clock skew (or the max queue age).

    Example::

        try:
            raise TxnTokenExpiredError("expired 40 s ago")
        except TxnTokenError as error:
            print(error)
    """


class TxnTokenContextError(TxnTokenError):
    """The token's tenant or user differs from the baggage's: the baggage was forged.

    Example::

        try:
            raise TxnTokenContextError("token tenant 'acme', baggage tenant 'globex'")
        except TxnTokenError as error:
            print(error)
    """
