"""Demo step "trust": a transaction token minted at the edge, verified at the next hop;
forged baggage and a token-less message are refused and dead-lettered intact.

Offline. Needs the ``jwt`` extra; without it the step says how to install it and passes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..decorators import consumer
from ..errors import MissingExtraError
from ..flowcontext import context, current
from ..propagation import inject

AUDIENCE = "demo.internal"


def run(out: Path, say: Callable[[str], None]) -> None:
    """Run the step; raises AssertionError if a claim does not hold."""
    try:
        from .. import trust

        signer = trust.Signer.generate(kid="demo-edge")
        jwks = trust.jwks(signer)  # the first use of PyJWT
    except MissingExtraError:
        say("skipped: pip install 'flowtrace-sdk[jwt]' to see transaction tokens")
        return
    (out / "trust-jwks.json").write_text(json.dumps(jwks, indent=2), encoding="utf-8")
    verifier = trust.Verifier(jwks, audience=AUDIENCE)
    dead: list[Any] = []
    ran: list[str | None] = []

    @consumer("demo.worker", trust="required", verifier=verifier, on_missing=dead.append)
    def worker(message: Any) -> None:
        ran.append(current().tenant)

    with context(tenant="tenant-a", user="u-1", correlation_id="demo-txn"):
        good = SimpleNamespace(headers=inject({}, txn_token=trust.mint(signer, audience=AUDIENCE)))
        bare = SimpleNamespace(headers=inject({}))
    with context(tenant="tenant-b"):
        swapped = inject({}, txn_token=trust.mint(signer, audience=AUDIENCE))
    swapped["baggage"] = "flowtrace.tenant=tenant-a"
    forged = SimpleNamespace(headers=swapped)
    for message in (good, bare, forged):
        worker(message)
    assert ran == ["tenant-a"], ran
    assert dead == [bare, forged], dead
    say("edge-minted Txn-Token verified at the worker: ran as tenant-a")
    say("no token / tenant-b token under tenant-a baggage: both refused, dead-lettered intact")
    say(f"JWKS for verifiers: {out / 'trust-jwks.json'}")
