"""``flowtrace erase``: erase one subject everywhere the evidence shows, resumably.

    flowtrace erase SUBJECT --tenant T --vault MODULE:NAME --state FILE --pseudonym-key FILE
                    --signing-key PEM [--from SOURCE...] [--audit LOG] [--stores MODULE:NAME]
                    [--reason TEXT] [--out FILE]

Prints the signed receipt. Run the same command again after an interruption: finished
steps are skipped. Exit status 0; 1 a step kept failing (rerun to resume); 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._subject import add_common, evidence, load_object, write


def register(sub: Any) -> None:
    parser = sub.add_parser("erase", help="erasure: shred, delete, list manual tasks; resumable")
    add_common(parser)
    parser.add_argument("--vault", required=True, help="MODULE:NAME of the KeyVault")
    parser.add_argument("--state", required=True, help="resumable state file of this request")
    parser.add_argument("--reason", help="the request reference, e.g. 'ticket 981'")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from flowtrace import audit, privacy
    from flowtrace.errors import ErasureError, FlowtraceError

    def progress(step: Any, status: str) -> None:
        print(f"{step.id}: {status}", file=sys.stderr)

    try:
        stores = load_object(args.stores) if args.stores else []
        vault = load_object(args.vault)
        key = audit.load_private_key(args.signing_key)
        found = evidence(args)
        log = audit.AuditLog(args.audit, signing_key=key) if args.audit else None
        try:
            receipt = privacy.erase(
                args.subject, tenant=args.tenant, vault=vault, stores=stores, evidence=found,
                state_file=args.state, signing_key=key, audit_log=log, reason=args.reason,
                progress=progress,
            )
        finally:
            if log is not None:
                log.close()
    except ErasureError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    except (FlowtraceError, OSError, ValueError, ImportError, AttributeError) as exc:
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    write(args, json.dumps(receipt, indent=1, sort_keys=True))
    print(f"summary: {receipt['summary']}", file=sys.stderr)
    return 0
