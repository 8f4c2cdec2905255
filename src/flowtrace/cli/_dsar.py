"""``flowtrace dsar``: answer a subject access request from evidence.

    flowtrace dsar SUBJECT --tenant T --from SOURCE... --pseudonym-key FILE --signing-key PEM
                   [--audit LOG] [--stores MODULE:NAME] [--vault MODULE:NAME] [--out FILE]

Prints (or writes to FILE, with FILE.html beside it) the signed JSON bundle. Exit status 0,
or 2 on unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._subject import add_common, evidence, load_object, write


def register(sub: Any) -> None:
    parser = sub.add_parser("dsar", help="subject access: everything held about one subject")
    add_common(parser)
    parser.add_argument("--vault", help="MODULE:NAME of the KeyVault (decrypts restricted fields)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from flowtrace import audit, privacy
    from flowtrace.crypto import FieldEncryptor
    from flowtrace.errors import FlowtraceError

    try:
        stores = load_object(args.stores) if args.stores else []
        encryptor = FieldEncryptor(load_object(args.vault)) if args.vault else None
        key = audit.load_private_key(args.signing_key)
        log = audit.AuditLog(args.audit, signing_key=key) if args.audit else None
        try:
            bundle = privacy.subject_report(
                args.subject, tenant=args.tenant, evidence=evidence(args), stores=stores,
                encryptor=encryptor, signing_key=key, audit_log=log,
            )
        finally:
            if log is not None:
                log.close()
    except (FlowtraceError, OSError, ValueError, ImportError, AttributeError) as exc:
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    write(args, json.dumps(bundle, indent=1, sort_keys=True))
    write(args, privacy.bundle_html(bundle), ".html")
    print(f"{len(bundle['recipients'])} recipient(s), {len(bundle['derived'])} derived, "
          f"{len(bundle['accesses'])} access(es); signed by {bundle['signature']['key_id']}",
          file=sys.stderr)
    return 0
