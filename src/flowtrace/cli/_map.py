"""``flowtrace map``: build the observed data-flow map, check it against the declared map,
render it.

    flowtrace map check --declared map.toml --from SOURCE [SOURCE ...]
                        [--baseline FILE] [--write-baseline FILE] [--stale-error] [--json]
    flowtrace map render --from SOURCE [SOURCE ...] --format mermaid|dot|html|json
                        [--declared map.toml] [--trace ID] [--out FILE]

``SOURCE`` is a flowtrace span file (``configure(spans_file=...)``), an OTLP JSON or
protobuf file (Collector ``file`` exporter), a lineage buffer directory or edge file, or an
audit log. Exit status: ``check`` 0 no failing finding, 1 findings; 2 unreadable input or
usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("map", help="observed data-flow map: check and render")
    commands = parser.add_subparsers(dest="map_command", metavar="ACTION")

    check = commands.add_parser("check", help="fail on drift from the declared map")
    check.add_argument("--declared", required=True, help="declared map (.toml, .yaml)")
    _sources(check)
    check.add_argument("--baseline", help="accept the findings listed in this file")
    check.add_argument("--write-baseline", help="write today's error findings to this file")
    check.add_argument(
        "--stale-error", action="store_true", help="declared flows never observed fail too"
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=_check)

    render = commands.add_parser("render", help="draw the map (or one trace)")
    _sources(render)
    render.add_argument(
        "--format", required=True, choices=("mermaid", "dot", "html", "json"), dest="fmt"
    )
    render.add_argument("--declared", help="declared map: regions, and findings in the report")
    render.add_argument("--trace", help="a trace id: draw that trace's swimlane")
    render.add_argument("--out", help="write here instead of stdout")
    render.set_defaults(func=_render)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _sources(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="sources",
        nargs="+",
        action="extend",
        required=True,
        metavar="SOURCE",
        help="span / OTLP / lineage / audit sources",
    )


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    from flowtrace import map as ftmap

    declared = ftmap.load_declared(args.declared) if args.declared else None
    observed = ftmap.build(args.sources)
    if declared is not None:
        declared.apply_regions(observed)
    return observed, declared


def _check(args: argparse.Namespace) -> int:
    from flowtrace import map as ftmap
    from flowtrace.errors import MapError

    try:
        observed, declared = _load(args)
        baseline = ftmap.load_baseline(args.baseline) if args.baseline else ()
    except MapError as exc:
        print(f"flowtrace map check: {exc}", file=sys.stderr)
        return 2
    report = ftmap.check(
        observed, declared, baseline=baseline, stale="error" if args.stale_error else "warning"
    )
    if args.write_baseline:
        count = ftmap.write_baseline(report, args.write_baseline)
        print(f"wrote {count} accepted finding(s) to {args.write_baseline}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        for finding in report.findings:
            print(finding)
        print(
            f"{observed.spans} spans, {len(observed.flows)} flows: "
            + ("OK" if report.ok else f"{len(report.failing)} failing finding(s)")
        )
    return 0 if report.ok else 1


def _render(args: argparse.Namespace) -> int:
    from flowtrace import map as ftmap
    from flowtrace.errors import MapError

    try:
        observed, declared = _load(args)
        steps = None
        if args.trace:
            steps = ftmap.trace_steps(
                (s for source in args.sources for s in ftmap.read_source(source)), args.trace
            )
            if not steps:
                print(f"flowtrace map render: no flow in trace {args.trace}", file=sys.stderr)
                return 2
    except MapError as exc:
        print(f"flowtrace map render: {exc}", file=sys.stderr)
        return 2
    findings = ftmap.check(observed, declared).findings if declared is not None else ()
    text = ftmap.render(
        observed,
        args.fmt,
        findings=findings,
        declared=declared,
        steps=steps,
        trace_id=args.trace,
    )
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
