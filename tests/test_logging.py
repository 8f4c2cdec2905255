"""flowtrace.logging: the structlog processor and the stdlib logging filter."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

import flowtrace
from flowtrace import Scrubber
from flowtrace.logging import ScrubFilter, ScrubProcessor

CARD = "4111111111111111"


# --- structlog -----------------------------------------------------------------------------


def _structlog_output(processor: ScrubProcessor, **event: object) -> dict[str, object]:
    out = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[processor, structlog.processors.JSONRenderer()],
    )
    logger.info(**event)  # type: ignore[arg-type]
    return dict(json.loads(out.getvalue()))


def test_structlog_processor_scrubs_event_and_values() -> None:
    """Event text, nested values and sensitive keys are scrubbed before rendering."""
    out = _structlog_output(
        ScrubProcessor(),
        event=f"charge {CARD} failed",
        user={"email": "a@b.io"},
        password="hunter2",
        tokens_used=512,
    )
    assert out == {
        "event": "charge [REDACTED:card] failed",
        "user": {"email": "[REDACTED:email]"},
        "password": "[REDACTED:credential]",
        "tokens_used": 512,
    }


def test_structlog_processor_does_not_mutate_the_event_dict() -> None:
    """Other processors holding the dict see it unchanged."""
    event = {"event": "x a@b.io", "k": ["c@d.io"]}
    ScrubProcessor()(None, "info", event)
    assert event == {"event": "x a@b.io", "k": ["c@d.io"]}


def test_structlog_count_key_and_configured_scrubber() -> None:
    """count_key reports hits; configure(scrubber=...) is honoured at call time."""
    processor = ScrubProcessor(count_key="scrubbed")
    assert processor(None, "info", {"event": "a@b.io c@d.io"})["scrubbed"] == 2
    flowtrace.configure(scrubber=Scrubber(schema={"plan": "restricted"}))
    assert processor(None, "info", {"event": "e", "plan": "gold"})["plan"] == "[REDACTED:field]"


def test_structlog_processor_fails_closed() -> None:
    """If scrubbing itself breaks, the event is replaced, not passed through."""

    class Broken(Scrubber):
        def scrub(self, obj: object) -> object:
            raise RuntimeError("boom")

    out = ScrubProcessor(Broken())(None, "info", {"event": "a@b.io"})
    assert out == {"event": "[REDACTED:scrub_error]"}


def test_structlog_neutralizes_log_injection() -> None:
    """A CRLF in a value cannot forge a second log line."""
    out = ScrubProcessor()(None, "info", {"event": "login", "user": "bob\r\nINFO admin ok"})
    assert out["user"] == "bob\\r\\nINFO admin ok"


# --- stdlib logging ------------------------------------------------------------------------


@pytest.fixture
def stdlib() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(ctx)s"))
    handler.addFilter(ScrubFilter())
    logger = logging.getLogger("test_flowtrace_logging")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


def test_filter_scrubs_msg_args_and_extra(stdlib: tuple[logging.Logger, io.StringIO]) -> None:
    """msg, %-args and extra= fields are scrubbed; formatting still works."""
    logger, stream = stdlib
    logger.info(
        "user %s paid with %s (%d items)",
        "a@b.io",
        CARD,
        3,
        extra={"ctx": {"password": "pw", "ip": "203.0.113.9"}},
    )
    line = stream.getvalue().strip()
    assert line == (
        "INFO user [REDACTED:email] paid with [REDACTED:card] (3 items) "
        "{'password': '[REDACTED:credential]', 'ip': '[REDACTED:ipv4]'}"
    )


def test_filter_handles_args_whose_type_changes(stdlib: tuple[logging.Logger, io.StringIO]) -> None:
    """An int card under %d becomes a placeholder without breaking formatting."""
    logger, stream = stdlib
    logger.info("card %d", int(CARD), extra={"ctx": "-"})
    assert stream.getvalue().strip() == "INFO card [REDACTED:card] -"


def test_filter_scrubs_exception_text(stdlib: tuple[logging.Logger, io.StringIO]) -> None:
    """The formatted traceback is scrubbed and keeps its line structure."""
    logger, stream = stdlib
    try:
        raise ValueError(f"bad card {CARD} for a@b.io")
    except ValueError:
        logger.exception("failed", extra={"ctx": "-"})
    text = stream.getvalue()
    assert CARD not in text
    assert "a@b.io" not in text
    assert "ValueError: bad card [REDACTED:card] for [REDACTED:email]" in text
    assert "Traceback (most recent call last):\n" in text


def test_filter_scrubs_once_across_handlers() -> None:
    """Two handlers with filters: the record is scrubbed once and both see it scrubbed."""
    streams = [io.StringIO(), io.StringIO()]
    logger = logging.getLogger("test_flowtrace_two_handlers")
    logger.propagate = False
    handlers = []
    for s in streams:
        h = logging.StreamHandler(s)
        h.addFilter(ScrubFilter())
        logger.addHandler(h)
        handlers.append(h)
    try:
        logger.warning("to %s", "a@b.io")
    finally:
        for h in handlers:
            logger.removeHandler(h)
    assert [s.getvalue() for s in streams] == ["to [REDACTED:email]\n"] * 2


def test_filter_report_only_changes_nothing(stdlib: tuple[logging.Logger, io.StringIO]) -> None:
    """Report-only scrubber: the record is emitted unchanged."""
    logger, stream = stdlib
    flowtrace.configure(scrubber=Scrubber(report_only=True))
    logger.info("to %s", "a@b.io", extra={"ctx": "-"})
    assert stream.getvalue().strip() == "INFO to a@b.io -"
