"""``flowtrace audit``: verify, query, recover, keygen, prove, init-db."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("audit", help="verify, query and repair tamper-evident audit logs")
    commands = parser.add_subparsers(dest="audit_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    verify = commands.add_parser("verify", help="verify a log against its signed checkpoints")
    verify.add_argument("path", type=Path, help="the JSON-lines audit log")
    verify.add_argument(
        "--public-key", required=True, action="append",
        help="Ed25519 public key: PEM file, PEM text or hex (repeat for one key per writer)",
    )
    verify.add_argument("--json", action="store_true", help="print a JSON report")
    verify.add_argument(
        "--allow-unsealed", type=int, default=0, metavar="N",
        help="accept up to N records after the latest checkpoint (a log still being "
        "written); default 0: the latest checkpoint must cover every record",
    )
    verify.add_argument(
        "--anchor", action="append", default=[], type=Path, metavar="FILE",
        help="a checkpoint file held elsewhere (a mirror); the log must agree with it",
    )
    verify.add_argument(
        "--trusted-size", type=int, metavar="N",
        help="with --trusted-root: a size/root you hold; the log must be at least this long "
        "and agree with it",
    )
    verify.add_argument("--trusted-root", metavar="HEX", help="Merkle root at --trusted-size")
    verify.add_argument(
        "--max-line-bytes", type=int, default=1 << 20, help="refuse longer lines (default 1 MiB)"
    )
    verify.add_argument(
        "--check-format", action="store_true", help="also check every event is RFC 8785 JSON"
    )
    verify.set_defaults(func=_verify)

    query = commands.add_parser("query", help="who did what to whose data, when and why")
    query.add_argument("path", type=Path, nargs="?", default=Path("audit.jsonl"))
    for name in ("subject", "tenant", "actor", "action", "resource"):
        query.add_argument(f"--{name}")
    query.add_argument("--since", help="6mo, 30d, 12h, 1y, 2w or an ISO date")
    query.add_argument("--until", help="same forms as --since")
    query.add_argument("--json", action="store_true", help="one JSON object per line")
    query.add_argument(
        "--public-key", action="append",
        help="verify the log first (refuse to answer from a log that does not verify)",
    )
    query.add_argument(
        "--allow-unsealed", type=int, default=0, metavar="N",
        help="with --public-key: accept up to N records after the latest checkpoint",
    )
    query.set_defaults(func=_query)

    recover = commands.add_parser("recover", help="repair a torn last line after a crash")
    recover.add_argument("path", type=Path)
    recover.add_argument(
        "--private-key", help="the log's signing key (required for signed logs; checked first)"
    )
    recover.add_argument(
        "--cut-unattributed", action="store_true",
        help="also move out complete records no writer signed (a write cut short by a crash)",
    )
    recover.set_defaults(func=_recover)

    init_db = commands.add_parser(
        "init-db", help="create the PostgreSQL audit tables and triggers (run once, as owner)"
    )
    init_db.add_argument("dsn", help="libpq connection string of the owning role")
    init_db.add_argument("--table", default="audit_log", help="[schema.]table (default audit_log)")
    init_db.add_argument("--grant", metavar="ROLE", help="writer role: gets INSERT, SELECT only")
    init_db.set_defaults(func=_init_db)

    keygen = commands.add_parser("keygen", help="create an Ed25519 checkpoint signing key")
    keygen.add_argument("--out", type=Path, required=True, help="private key file (PEM)")
    keygen.set_defaults(func=_keygen)

    prove = commands.add_parser("prove", help="inclusion proof for one record")
    prove.add_argument("path", type=Path)
    prove.add_argument("sequence", type=int)
    prove.add_argument("--public-key", required=True)
    prove.set_defaults(func=_prove)

    check = commands.add_parser("check-proof", help="check an inclusion proof (JSON file)")
    check.add_argument("proof", type=Path)
    check.add_argument("--public-key", required=True)
    check.set_defaults(func=_check_proof)


def _fail(args: argparse.Namespace, error: Exception) -> int:
    from ..errors import AuditVerificationError

    if getattr(args, "json", False):
        print(
            json.dumps(
                {
                    "ok": False,
                    "error": type(error).__name__,
                    "sequence": getattr(error, "sequence", None)
                    if isinstance(error, AuditVerificationError)
                    else None,
                    "message": str(error),
                }
            )
        )
    else:
        print(f"FAILED: {type(error).__name__}: {error}", file=sys.stderr)
    return 1


def _verify(args: argparse.Namespace) -> int:
    from ..audit import TrustedHead, verify
    from ..errors import FlowtraceError

    anchors: list[Any] = list(args.anchor)
    if (args.trusted_size is None) != (args.trusted_root is None):
        print("FAILED: give --trusted-size and --trusted-root together", file=sys.stderr)
        return 2
    if args.trusted_size is not None:
        anchors.append(TrustedHead(args.trusted_size, args.trusted_root))
    try:
        report = verify(
            args.path,
            public_key=args.public_key,
            allow_unsealed=args.allow_unsealed,
            anchors=anchors,
            check_format=args.check_format,
            max_line_bytes=args.max_line_bytes,
        )
    except (FlowtraceError, OSError) as exc:
        return _fail(args, exc)
    if args.json:
        print(json.dumps({"ok": True, **report.to_dict()}))
    else:
        print(report)
    return 0


def _query(args: argparse.Namespace) -> int:
    from ..audit import query, verify
    from ..errors import FlowtraceError

    try:
        if args.public_key:
            verify(args.path, public_key=args.public_key, allow_unsealed=args.allow_unsealed)
        events = query(
            args.path,
            subject=args.subject,
            tenant=args.tenant,
            actor=args.actor,
            action=args.action,
            resource=args.resource,
            since=args.since,
            until=args.until,
        )
        count = 0
        for event in events:
            count += 1
            if args.json:
                print(json.dumps({"sequence": event.sequence, **event.to_dict()}))
            else:
                why = event.reason or event.purpose or "-"
                print(
                    f"#{event.sequence} {event.ts} {event.actor or '-'} {event.action} "
                    f"{event.resource or '-'} subject={event.subject or '-'} "
                    f"tenant={event.tenant or '-'} why={why} {event.outcome}"
                )
    except (FlowtraceError, OSError, ValueError) as exc:
        return _fail(args, exc)
    if not args.json:
        print(f"{count} matching record(s)", file=sys.stderr)
    return 0


def _recover(args: argparse.Namespace) -> int:
    from ..audit import recover
    from ..errors import FlowtraceError

    try:
        report = recover(
            args.path, signing_key=args.private_key, cut_unattributed=args.cut_unattributed
        )
    except (FlowtraceError, OSError) as exc:
        return _fail(args, exc)
    if report.repaired:
        print(
            f"repaired {report.path}: cut {report.cut_bytes} byte(s) ({report.cut_records} "
            f"unsigned record(s); checkpoints: {report.cut_checkpoint_bytes} byte(s)), kept "
            f"in {report.saved_to}; completed last line: {report.completed}; recorded as "
            f"audit.recovered #{report.sequence}"
        )
    else:
        print(f"{report.path} has no torn line; nothing to repair")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    import os

    from ..audit import generate_key, key_id, private_key_pem, public_key_pem

    key = generate_key()
    if args.out.exists():
        print(f"FAILED: {args.out} exists; refusing to overwrite a key", file=sys.stderr)
        return 1
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_key_pem(key))
    public = args.out.with_name(args.out.name + ".pub")
    public.write_bytes(public_key_pem(key.public_key()))
    print(f"private key {args.out} (keep it secret), public key {public} "
          f"(give it to auditors); key id {key_id(key.public_key())}")
    return 0


def _prove(args: argparse.Namespace) -> int:
    from ..audit import inclusion_proof
    from ..errors import FlowtraceError

    try:
        proof = inclusion_proof(args.path, args.sequence, public_key=args.public_key)
    except (FlowtraceError, OSError) as exc:
        return _fail(args, exc)
    print(proof.to_json())
    return 0


def _check_proof(args: argparse.Namespace) -> int:
    from ..audit import verify_inclusion
    from ..errors import FlowtraceError

    try:
        event = verify_inclusion(args.proof.read_bytes(), public_key=args.public_key)
    except (FlowtraceError, OSError) as exc:
        return _fail(args, exc)
    print(f"OK: the record is included under the signed checkpoint: {json.dumps(event)}")
    return 0


def _init_db(args: argparse.Namespace) -> int:
    from ..audit import init_db
    from ..errors import FlowtraceError

    try:
        init_db(args.dsn, table=args.table, grant=args.grant)
    except FlowtraceError as exc:
        return _fail(args, exc)
    granted = f"; {args.grant} may INSERT and SELECT" if args.grant else ""
    print(f"audit tables {args.table} and {args.table}_checkpoints are ready{granted}")
    return 0
