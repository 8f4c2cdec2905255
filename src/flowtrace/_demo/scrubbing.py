"""Demo step: scrub a leaky event, a log file and a span; rollout with report-only."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from pathlib import Path

CARD = "4111 1111 1111 1111"


def run(out: Path, say: Callable[[str], None]) -> None:
    import flowtrace
    from flowtrace.logging import ScrubFilter
    from flowtrace.scrubbing import Mask, Scrubber

    event = {
        "event": f"refund to jane@example.com for card {CARD}",
        "user": {"id": 42, "ssn": "123-45-6789", "tokens_used": 512},
        "db": "postgres://app:hunter22@db.internal/orders",
        "note": "line1\r\nINFO forged admin login",
    }
    clean, report = Scrubber().scrub_with_report(event)
    text = json.dumps(clean)
    for secret in ("jane@example.com", CARD, "123-45-6789", "hunter22", "\r\n"):
        if secret in text:
            raise AssertionError(f"demo: {secret!r} survived scrubbing")
    if clean["user"]["tokens_used"] != 512:
        raise AssertionError("demo: a benign counter was scrubbed")
    say(f"scrub(): {report.total} values replaced {report.by_label()}; input untouched")

    masked = Scrubber(strategies={flowtrace.Category.PCI: Mask()}).scrub_text(f"card {CARD}")
    if masked != "card ************1111":
        raise AssertionError(f"demo: unexpected mask {masked!r}")
    say(f"PCI mask keeps the last four: {masked!r}")

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ScrubFilter())
    logger = logging.getLogger("flowtrace.demo.scrubbing")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("payment by %s failed", "jane@example.com")
    finally:
        logger.removeHandler(handler)
    if "jane@example.com" in stream.getvalue():
        raise AssertionError("demo: the logging filter let an email through")
    say(f"logging filter: {stream.getvalue().strip()!r}")

    leaked = out / "leaked.log"
    leaked.write_text(json.dumps(event) + "\nplain text from jane@example.com\n")
    from flowtrace.cli._scrub import scrub_lines
    from flowtrace.scrubbing import ScrubReport

    rep = ScrubReport()
    with leaked.open() as src:
        cleaned = "".join(scrub_lines(src, Scrubber(), rep))
    (out / "leaked.scrubbed.log").write_text(cleaned)
    if "jane@example.com" in cleaned:
        raise AssertionError("demo: flowtrace scrub left an email in the log")
    say(
        f"flowtrace scrub: purged {rep.total} values from {leaked.name} -> "
        f"leaked.scrubbed.log ({rep.by_category()})"
    )

    _, dry = Scrubber(report_only=True).scrub_with_report(event)
    say(f"report-only rollout: would scrub {dry.total} values, changed nothing")
