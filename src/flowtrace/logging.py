"""Scrubbing for structlog and the standard library's logging.

structlog: put :class:`ScrubProcessor` last before the renderer (after
``PositionalArgumentsFormatter``, so that it sees the rendered message; placed before it,
it warns once and renders ``%``-style messages itself)::

    structlog.configure(processors=[..., flowtrace.logging.ScrubProcessor(), JSONRenderer()])

stdlib logging: attach :class:`ScrubFilter` to the *handlers* (filters on a logger do not
see records propagated from child loggers)::

    handler.addFilter(flowtrace.logging.ScrubFilter())

Flow context on every line: :class:`ContextProcessor` (structlog, in the style of
``structlog.contextvars.merge_contextvars``) and :class:`ContextFilter` (stdlib) add the
tenant, the user's keyed pseudonym (never the raw identity), the purpose and the current
``trace_id``/``span_id``.

The scrubbers use ``flowtrace.configure(scrubber=...)`` or the built-in default unless given a
scrubber. Neither raises into the application: if scrubbing fails the event is replaced by
a redacted stub (fail closed) and the failure is reported on the ``flowtrace.scrubbing``
logger.
"""

from __future__ import annotations

import logging as _logging
import os
import traceback
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

from opentelemetry import trace as _trace

from .flowcontext import current
from .lineage import Pseudonymizer, lineage_config
from .scrubbing import Scrubber, default_scrubber

__all__ = [
    "CONTEXT_KEYS",
    "ContextFilter",
    "ContextProcessor",
    "ScrubFilter",
    "ScrubProcessor",
    "context_fields",
]

_log = _logging.getLogger("flowtrace.scrubbing")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(_logging.LogRecord("x", _logging.INFO, __file__, 1, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class ScrubProcessor:
    """A structlog processor returning a scrubbed copy of the event dict.

    Place it after ``PositionalArgumentsFormatter``. If ``positional_args`` is still in
    the event, it logs one warning on ``flowtrace.scrubbing`` and renders the message
    from scrubbed args itself, so the rendered text is what gets scanned.

    Args:
        scrubber: a :class:`~flowtrace.Scrubber`; ``None`` uses the configured default at
            call time.
        count_key: if set, events with scrubbed content get this key with the count.

    Example::

        import structlog

        from flowtrace.logging import ScrubProcessor

        structlog.configure(processors=[ScrubProcessor(), structlog.processors.JSONRenderer()])
        structlog.get_logger().info("signup", email="ana@example.com")
        # {"email": "[REDACTED:email]", "event": "signup"}
    """

    def __init__(self, scrubber: Scrubber | None = None, *, count_key: str | None = None) -> None:
        self.scrubber = scrubber
        self.count_key = count_key
        self._warned = False

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """Scrub every key and value (``event`` included)."""
        scrubber = self.scrubber if self.scrubber is not None else default_scrubber()
        try:
            if "positional_args" in event_dict:
                event_dict = self._render(scrubber, event_dict)
            if self.count_key is None:
                out = scrubber.scrub(event_dict)
                return out if isinstance(out, dict) else {"event": "[REDACTED:event]"}
            out, report = scrubber.scrub_with_report(event_dict)
        except Exception:
            _log.exception("flowtrace could not scrub a structlog event; it was redacted")
            return {"event": "[REDACTED:scrub_error]"}
        if not isinstance(out, dict):
            return {"event": "[REDACTED:event]"}
        if report.total:
            out = dict(out)
            out[self.count_key] = report.total
        return out


    def _render(
        self, scrubber: Scrubber, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """Running before ``PositionalArgumentsFormatter``: warn once, and render the
        message here from scrubbed args so that the rendered text is what gets scanned."""
        if not self._warned:
            self._warned = True
            _log.warning(
                "flowtrace ScrubProcessor runs before structlog's PositionalArgumentsFormatter; "
                "it renders %%-style messages itself so they are scrubbed. Put ScrubProcessor "
                "after PositionalArgumentsFormatter (last before the renderer)."
            )
        event, args = event_dict.get("event"), event_dict.get("positional_args")
        if not isinstance(event, str) or not isinstance(args, tuple) or not args:
            return event_dict
        fmt_args: Any = args[0] if len(args) == 1 and isinstance(args[0], dict) else args
        try:
            rendered = event % scrubber.scrub(fmt_args)
        except (TypeError, ValueError, KeyError):
            try:
                rendered = event % fmt_args
            except (TypeError, ValueError, KeyError):
                return event_dict
        out = {k: v for k, v in event_dict.items() if k != "positional_args"}
        out["event"] = rendered
        return out


class ScrubFilter(_logging.Filter):
    """A logging filter that scrubs each record in place: ``%``-args (key rules for a dict
    arg), then the rendered message as a whole (``log.info("%s=%s", "password", pw)``),
    ``extra=`` fields, and the exception and stack text (each scanned whole, line feeds
    kept). Always returns True (never drops a record).

    Example::

        import logging

        from flowtrace.logging import ScrubFilter

        handler = logging.StreamHandler()
        handler.addFilter(ScrubFilter())
        log = logging.getLogger("billing")
        log.addHandler(handler)
        log.warning("refund to %s", "ana@example.com")    # refund to [REDACTED:email]
    """

    def __init__(self, scrubber: Scrubber | None = None, name: str = "") -> None:
        super().__init__(name)
        self.scrubber = scrubber

    def filter(self, record: _logging.LogRecord) -> bool:
        """Scrub the record; on internal failure replace its content with a stub."""
        if getattr(record, "_flowtrace_scrubbed", False):
            return True  # already scrubbed by another handler's filter
        scrubber = self.scrubber if self.scrubber is not None else default_scrubber()
        try:
            self._scrub(record, scrubber)
        except Exception:
            _log.exception("flowtrace could not scrub a log record; it was redacted")
            record.msg, record.args = "[REDACTED:scrub_error]", None
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        if not scrubber.report_only:
            record._flowtrace_scrubbed = True
        return True

    @staticmethod
    def _scrub(record: _logging.LogRecord, scrubber: Scrubber) -> None:
        if scrubber.report_only:
            scrubber.scrub({"msg": str(record.msg), "args": record.args, "extra": _extras(record)})
            return
        msg, args = record.msg, record.args
        if args:
            # Args first (a dict arg gets key rules), then the rendered message is scanned
            # as a whole: log.info("%s=%s", "password", pw) only says "password=" there.
            scrubbed_args: Any = scrubber.scrub(
                dict(args) if isinstance(args, Mapping) else tuple(args)
            )
            try:
                rendered = str(msg) % scrubbed_args
            except (TypeError, ValueError, KeyError):
                # A scrubbed arg no longer fits its %-format: render the original.
                rendered = record.getMessage()
            record.msg, record.args = scrubber.scrub_text(rendered), None
        elif isinstance(msg, str):
            record.msg = scrubber.scrub_text(msg)
        else:
            record.msg = scrubber.scrub(msg)
        extras = _extras(record)
        if extras:
            clean = scrubber.scrub(extras)
            for key in extras:
                if key in clean:
                    setattr(record, key, clean[key])
                else:
                    delattr(record, key)  # dropped by a Drop strategy
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = _multiline(scrubber, record.exc_text)
            # The formatter uses exc_text when set; exc_info would let it re-render raw.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = _multiline(scrubber, record.stack_info)


def _extras(record: _logging.LogRecord) -> dict[str, Any]:
    return {
        k: v
        for k, v in vars(record).items()
        if k not in _STANDARD and not k.startswith("_flowtrace")
    }


def _multiline(scrubber: Scrubber, text: str) -> str:
    """Scrub the whole text (a PEM key or pretty-printed JSON spans lines), then keep its
    line feeds and escape every other control character."""
    return scrubber.scrub_text(text, multiline=True)


# --- flow context on log lines ----------------------------------------------------------------

CONTEXT_KEYS: Final = ("tenant", "user_pseudonym", "purpose", "trace_id", "span_id")
"""The keys :class:`ContextProcessor` and :class:`ContextFilter` add (a stable format).

Example::

    from flowtrace.logging import CONTEXT_KEYS

    assert CONTEXT_KEYS[0] == "tenant" and "user_pseudonym" in CONTEXT_KEYS
"""

# Without a configured key, users are pseudonymised with a key that never leaves this
# process: stable within it, useless to anyone reading the logs elsewhere.
_process_pseudonymizer = Pseudonymizer(os.urandom(32))


def _pseudonymizer(key: bytes | None) -> Pseudonymizer:
    if key is not None:
        return Pseudonymizer(key)
    configured = lineage_config().pseudonymizer
    return configured if configured is not None else _process_pseudonymizer


def context_fields(pseudonymizer: Pseudonymizer | None = None) -> dict[str, str]:
    """The flow-context fields for one log line: only those that are set.

    ``tenant``, ``user_pseudonym`` (the user's keyed per-tenant pseudonym, ``sp1:...``;
    left out without a tenant, never the raw user), ``purpose``, and ``trace_id`` /
    ``span_id`` (32 / 16 lowercase hex) of the current span when it is valid. Pseudonyms
    use ``pseudonymizer``, else the lineage pseudonym key
    (``configure(lineage=LineageConfig(pseudonym_key=...))``), else a per-process key.

    Example::

        import flowtrace as ft
        from flowtrace.logging import context_fields

        with ft.context(tenant="acme", user="ana@example.com", purpose="billing"):
            fields = context_fields()
        assert fields["tenant"] == "acme" and fields["purpose"] == "billing"
        assert fields["user_pseudonym"].startswith("sp1:")
        assert "ana@example.com" not in str(fields)
    """
    ctx = current()
    fields: dict[str, str] = {}
    if ctx.tenant is not None:
        fields["tenant"] = ctx.tenant
        if ctx.user is not None:
            fields["user_pseudonym"] = (pseudonymizer or _pseudonymizer(None)).pseudonym(
                ctx.user, ctx.tenant
            )
    if ctx.purpose is not None:
        fields["purpose"] = ctx.purpose
    span_context = _trace.get_current_span().get_span_context()
    if span_context.is_valid:
        fields["trace_id"] = format(span_context.trace_id, "032x")
        fields["span_id"] = format(span_context.span_id, "016x")
    return fields


class ContextProcessor:
    """A structlog processor adding the flow context to every event (see
    :func:`context_fields`). Put it before :class:`ScrubProcessor` and the renderer.

    The flow context is authoritative: an event's own ``tenant`` (or any other of the
    five keys) is replaced, so a log call cannot make a line claim another tenant. Never
    raises into the application: on an internal failure the event is logged without
    context and the failure reported on the ``flowtrace.logging`` logger.

    Args:
        pseudonym_key: bytes (at least 16) keying the user pseudonyms; default as in
            :func:`context_fields`.

    Example::

        import structlog

        import flowtrace as ft
        from flowtrace.logging import ContextProcessor

        structlog.configure(processors=[ContextProcessor(), structlog.processors.JSONRenderer()])
        with ft.context(tenant="acme", user="u-1", purpose="billing"):
            structlog.get_logger().info("invoice.sent")
        # {"event": "invoice.sent", "tenant": "acme", "user_pseudonym": "sp1:...", ...}
    """

    def __init__(self, *, pseudonym_key: bytes | None = None) -> None:
        self._pseudonymizer = Pseudonymizer(pseudonym_key) if pseudonym_key is not None else None

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """Drop any of the five keys the event set itself, then add the flow context's."""
        for key in CONTEXT_KEYS:
            event_dict.pop(key, None)
        try:
            event_dict.update(context_fields(self._pseudonymizer))
        except Exception:
            _context_log.exception("flowtrace could not add the flow context to a log event")
        return event_dict


class ContextFilter(_logging.Filter):
    """A logging filter setting ``tenant``, ``user_pseudonym``, ``purpose``, ``trace_id``
    and ``span_id`` attributes on each record (``"-"`` when unset, so format strings such
    as ``%(tenant)s`` always work). Always returns True.

    Attach it to *handlers* (as with :class:`ScrubFilter`): the record is stamped in the
    thread and task that logged it, so the context is the caller's.

    Example::

        import logging

        import flowtrace as ft
        from flowtrace.logging import ContextFilter

        handler = logging.StreamHandler()
        handler.addFilter(ContextFilter())
        handler.setFormatter(logging.Formatter("%(tenant)s %(user_pseudonym)s %(message)s"))
        log = logging.getLogger("billing")
        log.addHandler(handler)
        with ft.context(tenant="acme", user="u-1"):
            log.warning("invoice sent")      # acme sp1:... invoice sent
    """

    def __init__(self, name: str = "", *, pseudonym_key: bytes | None = None) -> None:
        super().__init__(name)
        self._pseudonymizer = Pseudonymizer(pseudonym_key) if pseudonym_key is not None else None

    def filter(self, record: _logging.LogRecord) -> bool:
        """Stamp the record with the flow context (the caller's values always win)."""
        try:
            fields = context_fields(self._pseudonymizer)
        except Exception:
            _context_log.exception("flowtrace could not add the flow context to a log record")
            fields = {}
        for key in CONTEXT_KEYS:
            setattr(record, key, fields.get(key, "-"))
        return True


_context_log = _logging.getLogger("flowtrace.logging")
