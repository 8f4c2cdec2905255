"""``flowtrace scrub [FILE|-] [-o OUT]``: scrub logs that already leaked.

Streams line by line (constant memory on multi-GB input). A line that parses as a JSON
object or array is scrubbed as data (key rules apply) and re-serialized compactly; any
other line, invalid JSON included, is scrubbed as text. The line structure is kept: one
line in, one line out. A summary by category goes to stderr.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any, cast

from ..scrubbing import Scrubber, ScrubReport, default_scrubber


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "scrub",
        help="scrub a JSON-lines or plain-text log (purge logs that already leaked)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", nargs="?", default="-", help="input file, or - for stdin")
    parser.add_argument("-o", "--output", default="-", help="output file, or - for stdout")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="write nothing; only print what would be scrubbed",
    )
    parser.set_defaults(func=_run)


def scrub_lines(lines: Iterable[str], scrubber: Scrubber, report: ScrubReport) -> Iterator[str]:
    """Scrub each line (keeping its line ending); ``report`` accumulates the counts."""
    for line in lines:
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        yield _scrub_line(body, scrubber, report) + ending


def _scrub_line(body: str, scrubber: Scrubber, report: ScrubReport) -> str:
    stripped = body.strip()
    if stripped[:1] in ("{", "["):
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, dict | list):
            out, rep = scrubber.scrub_with_report(data)
            report += rep
            return json.dumps(out, ensure_ascii=False, separators=(",", ":"), default=str)
    out_text, rep = scrubber.scrub_with_report_text(body)
    report += rep
    return out_text


def _open_in(name: str) -> IO[str]:
    if name == "-":
        return io.TextIOWrapper(
            sys.stdin.buffer, encoding="utf-8", errors="surrogateescape", newline=""
        )
    return open(name, encoding="utf-8", errors="surrogateescape", newline="")


def _open_out(name: str) -> IO[str]:
    if name == "-":
        sys.stdout.flush()
        return io.TextIOWrapper(
            sys.stdout.buffer,
            encoding="utf-8",
            errors="surrogateescape",
            newline="",
            write_through=True,
        )
    return open(name, "w", encoding="utf-8", errors="surrogateescape", newline="")


def _run(args: argparse.Namespace) -> int:
    scrubber = default_scrubber()
    report = ScrubReport()
    try:
        src = _open_in(args.file)
    except OSError as exc:
        print(f"flowtrace scrub: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    lines = 0
    try:
        if args.report_only:
            for _ in scrub_lines(src, scrubber, report):
                lines += 1
        else:
            try:
                dst = _open_out(args.output)
            except OSError as exc:
                print(
                    f"flowtrace scrub: cannot write {args.output}: {exc.strerror}",
                    file=sys.stderr,
                )
                return 2
            try:
                for out in scrub_lines(src, scrubber, report):
                    dst.write(out)
                    lines += 1
            finally:
                dst.flush()
                if args.output != "-":
                    dst.close()
                else:
                    cast(io.TextIOWrapper, dst).detach()
    finally:
        if args.file != "-":
            src.close()
        else:
            cast(io.TextIOWrapper, src).detach()
    _summary(report, lines, args.report_only)
    return 0


def _summary(report: ScrubReport, lines: int, report_only: bool) -> None:
    verb = "would scrub" if report_only else "scrubbed"
    print(f"flowtrace scrub: {lines} line(s), {verb} {report.total} value(s)", file=sys.stderr)
    for category, count in sorted(report.by_category().items()):
        print(f"  {category:14s} {count}", file=sys.stderr)
    for label, count in sorted(report.by_label().items()):
        print(f"    {label:22s} {count}", file=sys.stderr)
    if report.neutralized:
        print(f"  control characters neutralized: {report.neutralized}", file=sys.stderr)
    if report.budget_exceeded:
        print(f"  values redacted whole (budget): {report.budget_exceeded}", file=sys.stderr)
