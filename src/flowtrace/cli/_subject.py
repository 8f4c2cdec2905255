"""Shared options of ``flowtrace dsar`` and ``flowtrace erase`` (not a subcommand)."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("subject", help="the data subject's identifier in the application")
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--from", dest="sources", nargs="*", action="extend", default=[],
                        metavar="SOURCE", help="span / OTLP / lineage sources (evidence)")
    parser.add_argument("--audit", help="audit log: accesses are read from it, steps appended")
    parser.add_argument("--stores", help="MODULE:NAME of a list of privacy.SubjectStore objects")
    parser.add_argument("--pseudonym-key", required=True,
                        help="file holding the lineage pseudonym key (raw bytes)")
    parser.add_argument("--signing-key", required=True, help="audit Ed25519 private key (PEM)")
    parser.add_argument("--out", help="write the signed JSON here instead of stdout")


def load_object(spec: str) -> Any:
    """``package.module:name`` -> the object (the current directory is importable)."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"{spec!r} is not MODULE:NAME (e.g. myapp.privacy:STORES)")
    if "" not in sys.path:
        sys.path.insert(0, "")
    return getattr(importlib.import_module(module), name)


def evidence(args: argparse.Namespace) -> Any:
    from flowtrace import lineage, privacy

    pseudonymizer = lineage.Pseudonymizer(Path(args.pseudonym_key).read_bytes())
    return privacy.gather(args.subject, tenant=args.tenant, sources=args.sources,
                          audit=args.audit, pseudonymizer=pseudonymizer)


def write(args: argparse.Namespace, text: str, suffix: str = "") -> None:
    if args.out:
        Path(args.out + suffix).write_text(text, "utf-8")
    elif not suffix:
        sys.stdout.write(text + "\n")
