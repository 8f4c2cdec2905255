"""``flowtrace lineage``: where did this come from, and what was derived from whom.

    flowtrace lineage trace ID --from FILE [--json] [--tenant T] [--downstream]
    flowtrace lineage subject SUBJECT --from FILE --tenant T [--json] [--key-env VAR]
    flowtrace lineage export --from FILE [--from FILE ...] --to OUT.jsonl
    flowtrace lineage ingest SOURCE... --db URL

``--db URL`` (trace, subject) queries a lineage store (a SQLite path or ``sqlite:///...``,
or ``postgresql://...``) instead of loading ``--from FILE`` into memory.

``FILE`` is a buffer directory, a JSON-lines file of edges, flowtrace span lines
(``configure(spans_file=...)``), or OTLP JSON (Collector
``file`` exporter). Exit status: 0 found, 1 unknown id / unreadable input, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

DEFAULT_KEY_ENV = "FLOWTRACE_LINEAGE_KEY"


def register(sub: Any) -> None:
    parser = sub.add_parser("lineage", help="query lineage recorded by flowtrace")
    commands = parser.add_subparsers(dest="lineage_command", metavar="QUERY")

    trace = commands.add_parser("trace", help="upstream tree (or downstream list) of an id")
    trace.add_argument("id", help="a data identifier or a lineage edge id")
    _source_args(trace)
    trace.add_argument("--json", action="store_true", help="print JSON instead of a tree")
    trace.add_argument("--tenant", help="follow only this tenant's edges")
    trace.add_argument(
        "--downstream", action="store_true", help="list what was derived from ID instead"
    )
    trace.set_defaults(func=_trace)

    subject = commands.add_parser("subject", help="everything derived from a data subject")
    subject.add_argument("subject", help="the raw subject, or its sp1: pseudonym")
    _source_args(subject)
    subject.add_argument("--tenant", required=True, help="the tenant the subject belongs to")
    subject.add_argument("--json", action="store_true", help="print JSON")
    subject.add_argument(
        "--key-env",
        default=DEFAULT_KEY_ENV,
        help=f"environment variable holding the pseudonym key in hex (default {DEFAULT_KEY_ENV})",
    )
    subject.set_defaults(func=_subject)

    export = commands.add_parser(
        "export", help="merge lineage sources into one JSON-lines file of edges (deduplicated)"
    )
    export.add_argument(
        "--from", dest="sources", action="append", required=True, help="a source (repeatable)"
    )
    export.add_argument("--to", dest="target", required=True, help="JSON-lines file to write")
    export.set_defaults(func=_export)
    ingest = commands.add_parser("ingest", help="add lineage sources to a lineage store")
    ingest.add_argument("sources", nargs="+", help="buffer dirs or files (resumable)")
    ingest.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
    ingest.set_defaults(func=_ingest)
    parser.set_defaults(func=lambda args: _usage(parser))


def _source_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--from", dest="source", help="buffer dir or file (loaded in memory)")
    group.add_argument("--db", help="lineage store: SQLite path or postgresql:// URL")


def _ingest(args: argparse.Namespace) -> int:
    from ..errors import LineageError
    from ..lineage import LineageStore, read_edges

    try:
        with LineageStore(args.db) as store:
            for source in args.sources:
                added = store.ingest(read_edges(source), source=os.path.abspath(source))
                print(f"{source}: {added} new edge(s)")
    except (LineageError, OSError) as exc:
        print(f"flowtrace lineage: {exc}", file=sys.stderr)
        return 1
    return 0


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _load(args: argparse.Namespace) -> Any:
    from ..lineage import LineageGraph, LineageStore

    if args.db:
        return LineageStore(args.db)
    return LineageGraph.load(args.source)


def _close(graph: Any) -> None:
    if graph is not None and hasattr(graph, "close"):  # a LineageStore
        graph.close()


def _render(node: Any, prefix: str = "", last: bool = True, top: bool = True) -> list[str]:
    lines = [node.identifier + ("  (see above)" if node.seen else "")] if top else []
    for i, (edge, children) in enumerate(node.via):
        tail = i == len(node.via) - 1
        version = f" {edge.code_version}" if edge.code_version else ""
        tenant = f" tenant={edge.tenant}" if edge.tenant else ""
        lines.append(f"{prefix}{'`' if tail else '|'}-< {edge.name}{version}{tenant} [{edge.id}]")
        inner = prefix + ("    " if tail else "|   ")
        for j, child in enumerate(children):
            end = j == len(children) - 1
            seen = "  (see above)" if child.seen else ""
            lines.append(f"{inner}{'`' if end else '|'}-- {child.identifier}{seen}")
            lines.extend(_render(child, inner + ("    " if end else "|   "), end, top=False))
    return lines


def _trace(args: argparse.Namespace) -> int:
    from ..errors import LineageError

    graph = None
    try:
        graph = _load(args)
        if args.downstream:
            found = graph.downstream(args.id, tenant=args.tenant)
            if args.json:
                print(json.dumps({"id": args.id, "downstream": found}, indent=2))
            else:
                print("\n".join([args.id, *(f"  -> {x}" for x in found)]))
            return 0
        tree = graph.trace(args.id, tenant=args.tenant)
        sources = graph.sources(args.id, tenant=args.tenant)
    except (LineageError, OSError) as exc:
        print(f"flowtrace lineage: {exc}", file=sys.stderr)
        return 1
    finally:
        _close(graph)
    if args.json:
        print(json.dumps({"tree": tree.to_dict(), "sources": sources}, indent=2))
    else:
        print("\n".join(_render(tree)))
        print(f"\nsources ({len(sources)}): " + ", ".join(sources))
    return 0


def _subject(args: argparse.Namespace) -> int:
    from ..errors import LineageError
    from ..lineage import Pseudonymizer
    from ..lineage._pseudonym import PSEUDONYM_PREFIX

    pseudonymizer = None
    if not args.subject.startswith(PSEUDONYM_PREFIX):
        raw = os.environ.get(args.key_env)
        if not raw:
            print(
                f"flowtrace lineage: set {args.key_env} to the pseudonym key (hex), or pass the "
                "subject's sp1: pseudonym; raw subjects are never stored in lineage",
                file=sys.stderr,
            )
            return 2
        try:
            pseudonymizer = Pseudonymizer(bytes.fromhex(raw))
        except ValueError:
            print(f"flowtrace lineage: {args.key_env} is not valid hex", file=sys.stderr)
            return 2
        except LineageError as exc:
            print(f"flowtrace lineage: {exc}", file=sys.stderr)
            return 2
    graph = None
    try:
        graph = _load(args)
        pseudonym = (
            pseudonymizer.pseudonym(args.subject, args.tenant) if pseudonymizer else args.subject
        )
        found = graph.derived_from(pseudonym, tenant=args.tenant)
    except (LineageError, OSError) as exc:
        print(f"flowtrace lineage: {exc}", file=sys.stderr)
        return 1
    finally:
        _close(graph)
    if args.json:
        print(json.dumps({"subject": pseudonym, "tenant": args.tenant, "records": found}, indent=2))
    else:
        print(f"{pseudonym} in tenant {args.tenant}: {len(found)} record(s)")
        for identifier in found:
            print(f"  {identifier}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..errors import LineageError
    from ..lineage import LineageGraph, read_edges

    graph = LineageGraph()
    try:
        for source in args.sources:
            graph.add_all(read_edges(source))
        tmp = f"{args.target}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for edge in graph:
                f.write(edge.to_json() + "\n")
        os.replace(tmp, args.target)
    except (LineageError, OSError) as exc:
        print(f"flowtrace lineage: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(graph)} edges to {args.target} ({graph.duplicates} duplicates dropped)")
    return 0
