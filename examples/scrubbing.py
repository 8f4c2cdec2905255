"""Scrubbing recipes: flowtrace.scrub, a schema, strategies, structlog and stdlib logging.

Runs offline and asserts its own claims: python examples/scrubbing.py
"""

from __future__ import annotations

import io
import json
import logging

import structlog

import flowtrace
from flowtrace import Category, Schema, Scrubber
from flowtrace.logging import ScrubFilter, ScrubProcessor
from flowtrace.scrubbing import Mask, Pseudonymize

# 1. Zero configuration: value shapes (checksum-validated) and sensitive key names.
event = {
    "event": "refund to jane@example.com requested",
    "card": "4111-1111-1111-1111",
    "reference": "4111-1111-1111-1112",  # fails Luhn: not a card, kept
    "password": "hunter2",
    "tokens_used": 512,  # a number under a token-like key is not a secret
}
clean = flowtrace.scrub(event)
assert clean == {
    "event": "refund to [REDACTED:email] requested",
    "card": "[REDACTED:card]",
    "reference": "4111-1111-1111-1112",
    "password": "[REDACTED:credential]",
    "tokens_used": 512,
}
assert event["password"] == "hunter2"  # the input is never mutated

# 2. A schema for fields no detector can recognise, and strategies per category.
schema = Schema.from_dict({"diagnosis": "restricted:phi", "patient.name": "pii"})
scrubber = Scrubber(
    schema=schema,
    strategies={
        Category.PCI: Mask(),  # PCI DSS: show at most the last four digits
        Category.PII: Pseudonymize(b"0123456789abcdef0123456789abcdef", key_id="2026-q4"),
    },
)
out = scrubber.scrub(
    {"patient": {"name": "Ann Lee", "diagnosis": "flu"}, "card": "4111111111111111"}
)
assert out["patient"]["diagnosis"] == "[REDACTED:phi]"
assert out["patient"]["name"].startswith("[PSEUDO:2026-q4:")
assert out["card"] == "************1111"
# Pseudonyms are stable: the same person joins across events without being disclosed.
assert scrubber.scrub({"patient": {"name": "Ann Lee"}})["patient"]["name"] == out["patient"]["name"]

# 3. Make it the default for every adapter.
flowtrace.configure(scrubber=scrubber)

# structlog: the processor goes right before the renderer.
buffer = io.StringIO()
log = structlog.wrap_logger(
    structlog.PrintLogger(buffer),
    processors=[ScrubProcessor(), structlog.processors.JSONRenderer()],
)
log.info("payment failed", card="4111 1111 1111 1111", ip="203.0.113.7")
assert json.loads(buffer.getvalue()) == {
    "event": "payment failed",
    "card": "************1111",
    "ip": "[REDACTED:ipv4]",
}

# stdlib logging: the filter goes on the handler.
stream = io.StringIO()
handler = logging.StreamHandler(stream)
handler.addFilter(ScrubFilter())
std = logging.getLogger("example.scrubbing")
std.propagate = False
std.addHandler(handler)
std.warning("login failed for %s\r\nINFO forged line", "bob@example.com")
line = stream.getvalue()
assert "bob@example.com" not in line
assert "\r\n" not in line.rstrip("\n")

# 4. Roll out with report-only: count what would be scrubbed, change nothing.
dry, report = Scrubber(report_only=True).scrub_with_report(event)
assert dry is event
assert report.by_category() == {"pii": 1, "pci": 1, "credential": 1}
print("scrubbing example ok:", report.by_label())
