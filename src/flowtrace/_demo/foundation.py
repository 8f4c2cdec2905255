"""Demo step "foundation": a handler under tenant A publishes, a consumer handles it.

Everything runs in-process on embedded defaults: an in-memory queue stands in for the
broker, spans go to ``foundation-spans.jsonl`` in the output directory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flowtrace as ft
from flowtrace._configure import reset


def run(out: Path, say: Callable[[str], None]) -> None:
    """Run the step; raises AssertionError (or a FlowtraceError) if a claim does not hold."""
    spans_file = out / "foundation-spans.jsonl"
    spans_file.unlink(missing_ok=True)
    settings = ft.configure(service="flowtrace-demo", region="eu", spans_file=spans_file)
    try:
        _scenario(say)
    finally:
        settings.tracer_provider.force_flush()
        reset()
    spans = [json.loads(line) for line in spans_file.read_text(encoding="utf-8").splitlines()]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_name.setdefault(span["name"], []).append(span)
    producer, refused = by_name["orders.create"]
    assert refused["status"] == "ERROR"
    assert [e["name"] for e in refused["events"]] == ["flowtrace.tenant_mismatch", "exception"]
    consumed = [s for s in by_name["orders.process"] if s["links"]]
    assert consumed, "the consumer span must link to the producer span"
    assert consumed[0]["links"][0]["span_id"] == producer["span_id"]
    assert consumed[0]["attributes"]["flowtrace.tenant"] == "tenant-a"
    assert producer["resource"]["service.name"] == "flowtrace-demo"
    say(
        f"wrote {len(spans)} spans to {spans_file.name}; the consumer span links to the "
        f"producer span {producer['span_id']} and both carry flowtrace.tenant=tenant-a; "
        "the refused request's span holds a flowtrace.tenant_mismatch event"
    )


def _scenario(say: Callable[[str], None]) -> None:
    queue: list[dict[str, Any]] = []
    dead_letters: list[dict[str, Any]] = []
    handled: list[ft.FlowContext] = []

    @ft.handler(
        "orders.create",
        tenant=lambda request: request["claims"]["tenant"],  # verified credentials
        user=lambda request: request["claims"]["sub"],
        purpose="order-fulfilment",
        carrier=lambda request: request["headers"],  # untrusted
    )
    def create_order(request: dict[str, Any]) -> None:
        # Our own queue is in the trust domain: the user travels with the message.
        queue.append({"headers": ft.inject({}, identity=True), "body": b'{"order": 1}'})

    # The envelope is ours (the broker's), so its "headers" key is named explicitly.
    @ft.consumer(
        "orders.process",
        headers=lambda message: message["headers"],
        on_missing=dead_letters.append,
    )
    def process(message: dict[str, Any]) -> None:
        handled.append(ft.current())

    create_order({"claims": {"tenant": "tenant-a", "sub": "alice"}, "headers": {}})
    process(queue.pop())
    (ctx,) = handled
    assert (ctx.tenant, ctx.user, ctx.purpose) == ("tenant-a", "alice", "order-fulfilment")
    say("handler under tenant-a published a message; the consumer ran as tenant-a/alice")

    orphan = {"headers": {}, "body": b"\x00no tenant here\xff"}
    process(orphan)
    assert dead_letters == [orphan]
    assert dead_letters[0]["body"] == b"\x00no tenant here\xff"
    assert len(handled) == 1
    @ft.consumer("orders.process.strict", headers=lambda message: message["headers"])
    def strict(message: dict[str, Any]) -> None:
        raise AssertionError("a tenant-less message must never reach the body")

    try:
        strict(orphan)
    except ft.MissingTenantError:
        pass
    else:
        raise AssertionError("a tenant-less message must be refused")
    say("a message without a tenant was refused (or dead-lettered intact, bytes unchanged)")

    with ft.context(tenant="tenant-a"):
        try:
            with ft.context(tenant="tenant-b"):
                raise AssertionError("a tenant switch must be blocked")
        except ft.TenantSwitchError:
            pass
    say("entering tenant-b inside tenant-a raised TenantSwitchError (fail closed)")

    forged = {"claims": {"tenant": "tenant-a", "sub": "alice"}, "headers": {}}
    with ft.context(tenant="tenant-b"):
        forged["headers"] = ft.inject({})
    try:
        create_order(forged)
    except ft.TenantMismatchError:
        pass
    else:
        raise AssertionError("headers naming another tenant must be refused")
    assert len(queue) == 0
    say("request headers claiming tenant-b against tenant-a credentials: TenantMismatchError")
