"""The public surface is deliberate and frozen: every public namespace's __all__ is listed
here, so adding, renaming or removing a public name is a visible change to this file (and an
entry in CHANGELOG.md)."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from types import ModuleType

import pytest

import flowtrace

SURFACE: dict[str, list[str]] = {
    "flowtrace": [
        "Category", "Classification", "ConfigError", "ContextError", "ContextProcessPoolExecutor",
        "ContextPropagationError", "ContextThreadPoolExecutor", "EventKind", "FlowContext",
        "FlowEvent", "FlowtraceError", "FlowtracePropagator", "InvalidContextValueError", "Level",
        "MissingExtraError", "MissingTenantError", "Observer", "Schema", "SchemaError",
        "ScrubError", "Scrubber", "Settings", "TenantMismatchError", "TenantNotAllowedError",
        "TenantSwitchError", "__version__", "add_observer", "bind", "configure", "consumer",
        "context", "cross_tenant", "cross_tenant_reason", "current", "extract", "handler",
        "inject", "remove_observer", "require_tenant", "scrub", "settings", "step",
    ],
    "flowtrace.audit": [
        "AuditEvent", "AuditLog", "Checkpoint", "CheckpointFile", "CheckpointStore",
        "Durability", "InclusionProof", "JsonlSink", "Outcome", "PostgresCheckpoints",
        "PostgresSink", "Receipt", "RecoveryReport", "Sink", "SqliteSink", "TrustedHead",
        "VerificationReport", "canonical", "event_for", "generate_key", "inclusion_proof",
        "init_db", "key_id", "load_private_key", "load_public_key", "parse_since",
        "private_key_pem", "public_key_pem", "query", "recover", "verify", "verify_inclusion",
    ],
    "flowtrace.classify": [
        "Category", "Classification", "DEFAULT_SCHEMA", "Level", "Schema", "key_words",
        "normalize_key",
    ],
    "flowtrace.cli": [
        "main",
    ],
    "flowtrace.crypto": [
        "AwsKmsKeyProvider", "CachePolicy", "DekRecord", "DestroyedKey", "FieldEncryptor",
        "KeyProvider", "KeyVault", "KeyringRecord", "LocalKeyProvider", "MemoryVaultStore",
        "PostgresVaultStore", "RetryPolicy", "ShredReceipt", "SqliteVaultStore", "TokenInfo",
        "VaultStore",
    ],
    "flowtrace.crypto.hazmat": [
        "open_token_with_key", "seal_with_key",
    ],
    "flowtrace.decorators": [
        "HeadersSource", "Resolver", "consumer", "handler",
    ],
    "flowtrace.errors": [
        "AuditCorruptedError", "AuditError", "AuditVerificationError", "AuditWriteError",
        "CheckpointSignatureError", "ConfigError", "ContextError", "ContextPropagationError",
        "CryptoError", "DatabaseCheckError", "DeclaredMapError", "ErasureError",
        "ErasureVerificationError", "FlowtraceError", "ForgedRecordError",
        "InvalidContextValueError", "KeyDestroyedError", "KeyProviderError",
        "KeyProviderUnavailableError", "KeyRetiredError", "LineageBufferError",
        "LineageBufferFullError", "LineageError", "MalformedTokenError",
        "MalformedTxnTokenError", "MapCheckError", "MapError", "MapSourceError",
        "MigrationError", "MissingExtraError", "MissingSubjectError", "MissingTenantError",
        "MissingTxnTokenError", "OversizedLineError", "PrivacyError", "PseudonymKeyError",
        "RecordDeletedError", "RecordInsertedError", "RecordModifiedError",
        "RecordReorderedError", "ResidencyViolationError", "SchemaError",
        "ScrubBudgetExceededError", "ScrubError", "SignatureError", "TamperedTokenError",
        "TenantMismatchError", "TenantNotAllowedError", "TenantRoutingError",
        "TenantScopeError", "TenantSwitchError", "TokenError", "TruncationError", "TrustError",
        "TrustKeyError", "TxnTokenAlgorithmError", "TxnTokenAudienceError",
        "TxnTokenContextError", "TxnTokenError", "TxnTokenExpiredError",
        "TxnTokenSignatureError", "UnknownKeyError", "UnknownTxnKeyError",
        "UnsupportedTokenVersionError", "WrongFieldError", "WrongTenantError", "require_extra",
    ],
    "flowtrace.flowcontext": [
        "EventKind", "FIELDS", "FlowContext", "FlowEvent", "MAX_BAGGAGE_ENTRIES",
        "MAX_LINEAGE_PARENTS", "MAX_VALUE_LENGTH", "Observer", "add_observer", "context",
        "cross_tenant", "cross_tenant_reason", "current", "remove_observer", "require_tenant",
    ],
    "flowtrace.integrations": [
    ],
    "flowtrace.integrations.aio_pika": [
        "dead_letter_to", "publish",
    ],
    "flowtrace.integrations.asgi": [
        "FlowtraceMiddleware",
    ],
    "flowtrace.integrations.dbcheck": [
        "Finding", "check_database", "require_rls",
    ],
    "flowtrace.integrations.httpx": [
        "instrument", "is_instrumented", "uninstrument",
    ],
    "flowtrace.integrations.dbisolation": [
        "RowRecorder", "assert_db_isolation",
    ],
    "flowtrace.integrations.kafka": [
        "carrier", "headers_for",
    ],
    "flowtrace.integrations.migrations": [
        "MigrationReport", "migrate_tenant_schemas",
    ],
    "flowtrace.integrations.mqtt": [
        "dead_letter_to", "headers", "publish",
    ],
    "flowtrace.integrations.nats": [
        "dead_letter_to", "publish",
    ],
    "flowtrace.integrations.pika": [
        "dead_letter_to", "publish",
    ],
    "flowtrace.integrations.psycopg": [
        "AsyncTenantConnection", "TenantConnection", "settings_statements",
    ],
    "flowtrace.integrations.pytest_plugin": [
        "assert_rls", "flowtrace_db_check",
    ],
    "flowtrace.integrations.redis": [
        "AsyncTenantCache", "TenantCache", "tenant_key",
    ],
    "flowtrace.integrations.requests": [
        "instrument", "is_instrumented", "uninstrument",
    ],
    "flowtrace.integrations.redis_streams": [
        "BODY", "StreamEntry", "add", "dead_letter_to", "entries",
    ],
    "flowtrace.integrations.routing": [
        "AsyncTenantRouter", "TenantRouter",
    ],
    "flowtrace.integrations.sqlalchemy": [
        "tenant_async_engine", "tenant_engine",
    ],
    "flowtrace.integrations.tenancy": [
        "TenancyPolicy", "schema_name", "validate_identifier",
    ],
    "flowtrace.integrations.web": [
        "REQUEST_REFUSED", "Refusal", "Resolve", "claims", "problem_response",
    ],
    "flowtrace.integrations.wsgi": [
        "FlowtraceMiddleware",
    ],
    "flowtrace.lineage": [
        "ATTR", "BufferStats", "FORMAT_VERSION", "LineageBuffer", "LineageConfig", "LineageEdge",
        "LineageGraph", "LineageSampler", "LineageSink", "LineageStore", "OpenLineageBridge",
        "Pseudonymizer",
        "TraceNode", "content_hash", "edge_attributes", "edge_from_attributes", "edge_to_span",
        "format_lineage_id", "granularity", "lineage_config", "new_lineage_id", "parse_lineage_id",
        "read_buffer", "read_edges", "record", "ref",
    ],
    "flowtrace.logging": [
        "CONTEXT_KEYS", "ContextFilter", "ContextProcessor", "ScrubFilter", "ScrubProcessor",
        "context_fields",
    ],
    "flowtrace.map": [
        "CheckReport", "DATA_CATEGORIES", "DATA_ENCRYPTED", "DESTINATION_REGION",
        "DeclaredFlow", "DeclaredMap", "DeclaredNode", "FLOWS_METRIC", "FORMATS", "Finding",
        "Flow", "FlowMetricsSpanProcessor", "Node", "ObservedMap", "RESIDENCY_ACTION",
        "RESTRICTED", "RULES", "RegionAnswer", "ResidencyPolicy", "SpanTuple", "TraceStep",
        "assert_matches", "build", "check", "classify_payload", "configure_residency",
        "guard_destination", "load_baseline", "load_declared", "parse_declared", "publish",
        "read_audit", "read_lineage", "read_source", "record_data", "region_answer", "render",
        "render_dot", "render_html", "render_json", "render_mermaid", "render_svg",
        "residency_policy", "spans_from_otlp_json", "spans_from_otlp_proto", "spans_from_sdk",
        "trace_steps", "write_baseline",
    ],
    "flowtrace.privacy": [
        "ErasureStep", "NodeEvidence", "SubjectEvidence", "SubjectStore", "bundle_html", "erase",
        "gather",
        "plan_erasure", "pseudonym_of", "render_ropa", "ropa", "sign", "subject_report",
        "verify_erasure",
        "verify_signed",
    ],
    "flowtrace.otel": [
        "ATTRIBUTES", "CATEGORIES_ATTRIBUTE", "COUNT_ATTRIBUTE", "EVENT_PREFIX",
        "FlowContextSpanProcessor", "JsonLinesSpanExporter", "SERVICE_REGION",
        "ScrubbingLogExporter", "ScrubbingLogRecordProcessor", "ScrubbingSpanExporter",
        "ScrubbingSpanProcessor", "flow_attributes", "get_tracer", "scrub_span",
        "span_event_observer", "tracer_provider",
    ],
    "flowtrace.propagation": [
        "BAGGAGE_DROPPED", "BAGGAGE_HEADER", "ContextProcessPoolExecutor",
        "ContextThreadPoolExecutor", "FlowtracePropagator", "TRACEPARENT_HEADER",
        "TRACESTATE_HEADER", "TXN_TOKEN_HEADER", "TokenVerifier", "bind", "extract",
        "flow_context_from_otel", "inject", "otel_context", "received_foreign",
        "remote_span_context", "trusted_destination",
    ],
    "flowtrace.scrubbing": [
        "BUILTIN_DETECTORS", "DROP", "Detector", "Drop", "Encrypt", "FieldEncryptorLike",
        "Finding", "Mask", "Pseudonymize", "Redact", "ScrubReport", "Scrubber", "Strategy",
        "default_scrubber", "scrub",
    ],
    "flowtrace.testing": [
        "Capture", "IsolationReport", "SequentialIdGenerator", "TenantRun",
        "assert_tenant_isolation", "flowtrace_capture", "reset",
    ],
    "flowtrace.trust": [
        "ALGORITHMS", "HEADER", "MAX_SKEW", "Signer", "TYP", "TxnToken", "Verifier", "jwks",
        "mint", "public_keys",
    ],
}

NAMESPACES = list(SURFACE)


def _public_names(module: ModuleType) -> set[str]:
    """Public attributes defined or re-exported on purpose (not submodules, not typing)."""
    names = set()
    for name, value in vars(module).items():
        if name.startswith("_") or inspect.ismodule(value):
            continue
        if name in ("annotations", "TYPE_CHECKING"):  # typing/__future__ plumbing
            continue
        owner = getattr(value, "__module__", module.__name__) or ""
        if callable(value) and not owner.startswith("flowtrace"):
            continue  # imported helpers such as Callable, dataclass
        names.add(name)
    return names


@pytest.mark.parametrize("name", NAMESPACES)
def test_all_is_sorted_and_resolves(name: str) -> None:
    """Every name in __all__ exists, and __all__ is sorted without duplicates."""
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert len(exported) == len(set(exported))
    assert exported == sorted(exported)
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == []


@pytest.mark.parametrize("name", NAMESPACES)
def test_surface_is_frozen(name: str) -> None:
    """Each public namespace exports exactly the frozen names (update SURFACE on purpose)."""
    module = importlib.import_module(name)
    assert sorted(module.__all__) == SURFACE[name]


def test_no_other_public_namespaces() -> None:
    """Every flowtrace module without a leading underscore is frozen above (or is private)."""
    import pkgutil

    found = {"flowtrace"}
    for info in pkgutil.walk_packages(flowtrace.__path__, "flowtrace."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            found.add(info.name)
    assert sorted(found) == sorted(SURFACE)


# Namespaces that only re-export: everything public in them must be listed in __all__.
REEXPORTING = [
    "flowtrace",
    "flowtrace.audit",
    "flowtrace.crypto",
    "flowtrace.decorators",
    "flowtrace.errors",
    "flowtrace.flowcontext",
    "flowtrace.lineage",
    "flowtrace.otel",
    "flowtrace.privacy",
    "flowtrace.propagation",
    "flowtrace.testing",
    "flowtrace.trust",
]


@pytest.mark.parametrize("name", REEXPORTING)
def test_all_lists_every_public_flowtrace_name(name: str) -> None:
    """No flowtrace-defined public name is left out of __all__."""
    module = importlib.import_module(name)
    internal = getattr(module, "_INTERNAL_INTERFACE", frozenset())  # documented, not public
    unlisted = sorted(_public_names(module) - set(module.__all__) - internal)
    assert unlisted == []


def test_one_way_to_do_each_thing() -> None:
    """Second spellings are gone (0.x: no aliases): notify, lineage.step/configure, readers."""
    from flowtrace import lineage

    assert not hasattr(flowtrace, "notify")
    for gone in ("step", "configure", "edges_from_spans", "edges_from_otlp_json",
                 "edges_from_otlp_proto", "edge_from_span_dict"):
        assert not hasattr(lineage, gone), gone
    assert [n for n in flowtrace.errors.__all__ if n[0].isupper() and not n.endswith("Error")] == []


def test_capability_namespaces_reachable_from_the_package() -> None:
    """ft.crypto, ft.audit and ft.lineage work after a bare `import flowtrace`."""
    code = (
        "import flowtrace as ft; "
        "assert ft.crypto.FieldEncryptor and ft.audit.AuditLog and ft.lineage.LineageGraph "
        "and ft.map.ObservedMap"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_error_derives_from_flowtrace_error() -> None:
    """Every exception class in flowtrace.errors is rooted at FlowtraceError."""
    from flowtrace import errors

    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, flowtrace.FlowtraceError), name


def test_error_tree_docstring_names_every_error() -> None:
    """The tree drawn in errors.py's docstring names every exception class."""
    from flowtrace import errors

    doc = errors.__doc__ or ""
    classes = [
        n
        for n in errors.__all__
        if isinstance(getattr(errors, n), type) and issubclass(getattr(errors, n), BaseException)
    ]
    assert [n for n in classes if n not in doc] == []


def test_configure_rejects_a_scrubber_that_is_not_one() -> None:
    """configure(scrubber=...) validates at configure time, not at first use."""
    with pytest.raises(flowtrace.ConfigError, match="Scrubber"):
        flowtrace.configure(scrubber=lambda value: value)
    scrubber = flowtrace.Scrubber()
    assert flowtrace.configure(scrubber=scrubber).scrubber is scrubber
