"""``flowtrace demo``: the end-to-end tour on embedded defaults (no servers)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("demo", help="run the end-to-end demo (no servers needed)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("flowtrace-demo-out"),
        help="directory for the demo's spans, audit log and other artefacts",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from .._demo import run

    return run(args.out)
