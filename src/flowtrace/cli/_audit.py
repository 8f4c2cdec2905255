"""``flowtrace audit``: verify, query, recover, keygen, prove."""

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
        "--public-key", required=True, help="Ed25519 public key: PEM file, PEM text or hex"
    )
    verify.add_argument("--json", action="store_true", help="print a JSON report")
    verify.add_argument(
        "--require-sealed",
        action="store_true",
        help="fail unless the latest checkpoint covers every record (log closed cleanly)",
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
    query.set_defaults(func=_query)

    recover = commands.add_parser("recover", help="repair a torn last line after a crash")
    recover.add_argument("path", type=Path)
    recover.add_argument("--private-key", help="sign a checkpoint after the repair record")
    recover.set_defaults(func=_recover)

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
    from ..audit import verify
    from ..errors import FlowtraceError

    try:
        report = verify(
            args.path,
            public_key=args.public_key,
            require_sealed=args.require_sealed,
            check_format=args.check_format,
        )
    except (FlowtraceError, OSError) as exc:
        return _fail(args, exc)
    if args.json:
        print(json.dumps({"ok": True, **report.to_dict()}))
    else:
        print(report)
    return 0


def _query(args: argparse.Namespace) -> int:
    from ..audit import query
    from ..errors import FlowtraceError

    try:
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
        report = recover(args.path, signing_key=args.private_key)
    except (FlowtraceError, OSError) as exc:
        return _fail(args, exc)
    if report.repaired:
        print(
            f"repaired {report.path}: removed a torn line of {report.torn_bytes} byte(s) "
            f"(checkpoints: {report.torn_checkpoint_bytes}), kept in {report.saved_to}; "
            f"recorded as audit.recovered #{report.sequence}"
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
