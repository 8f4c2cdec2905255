"""``flowtrace ropa``: GDPR Art. 30 records of processing from the declared and observed maps.

    flowtrace ropa --declared map.toml --from SOURCE... --format csv|json|html
                   [--controller NAME] [--out FILE]

Activities observed but never declared come first. Exit status 0; 2 unreadable input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("ropa", help="Art. 30 records of processing, evidenced or declared")
    parser.add_argument("--declared", required=True, help="declared map (.toml, .yaml)")
    parser.add_argument("--from", dest="sources", nargs="+", action="extend", required=True,
                        metavar="SOURCE", help="span / OTLP / lineage / audit sources")
    parser.add_argument("--format", dest="fmt", choices=("csv", "json", "html"), default="csv")
    parser.add_argument("--controller", help="the controller's name and contact")
    parser.add_argument("--out", help="write here instead of stdout")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from flowtrace import map as ftmap
    from flowtrace import privacy
    from flowtrace.errors import FlowtraceError

    try:
        declared = ftmap.load_declared(args.declared)
        observed = ftmap.build(args.sources)
        declared.apply_regions(observed)
    except (FlowtraceError, OSError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 2
    records = privacy.ropa(observed, declared, controller=args.controller)
    text = privacy.render_ropa(records, args.fmt)
    if args.out:
        Path(args.out).write_text(text, "utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    undeclared = sum(1 for r in records if not r["declared"])
    print(f"{len(records)} activities, {undeclared} observed but undeclared", file=sys.stderr)
    return 0
