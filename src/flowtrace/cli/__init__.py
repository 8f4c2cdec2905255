"""The ``flowtrace`` command (entry point ``flowtrace.cli:main``; ``python -m flowtrace.cli``).

Owns argument parsing only; each subcommand uses the public capability packages
(audit, crypto, lineage, scrubbing, the demo) and may import anything below it.

Each subcommand lives in its own module under :mod:`flowtrace.cli` (``_<name>.py``) exposing
``register(subparsers)``; the module is imported only when the CLI starts.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from .._version import __version__

__all__ = ["main"]

# Subcommand modules flowtrace.cli._<name>, in help order.
SUBCOMMANDS = ("demo", "scrub", "keys", "lineage", "audit", "db", "map", "ropa", "dsar", "erase")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="flowtrace",
        description="Prove what happens to the data your service touches.",
    )
    parser.add_argument("--version", action="version", version=f"flowtrace {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"flowtrace.cli._{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code.

    ``argv`` defaults to ``sys.argv[1:]``; the ``flowtrace`` command calls it.

    Example::

        from pathlib import Path

        from flowtrace.cli import main

        with open("app.log", "w") as log:
            print('{"msg": "signup", "email": "ann@example.com"}', file=log)
        assert main(["scrub", "app.log", "-o", "clean.log"]) == 0
        assert "ann@example.com" not in Path("clean.log").read_text()
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)

