"""Outbound HTTP (httpx sync/async, requests) against a real loopback server."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

import flowtrace as ft
from flowtrace.integrations import httpx as ft_httpx
from flowtrace.integrations import requests as ft_requests


@Request.application  # type: ignore[untyped-decorator,misc]
def echo(request: Request) -> Response:
    """Echo the propagation headers; /redirect?to=URL answers 307 to URL."""
    if request.path == "/redirect":
        return Response(status=307, headers={"location": request.args["to"]})
    return Response(request.headers.get("baggage", ""), mimetype="text/plain")


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    httpd = make_server("127.0.0.1", 0, echo, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_port
    httpd.shutdown()
    thread.join(10)


@pytest.fixture(autouse=True)
def instrumented() -> Iterator[None]:
    ft.configure(trust_domain=["127.0.0.1"])  # "localhost" is the untrusted partner
    ft_httpx.instrument()
    ft_requests.instrument()
    yield
    ft_httpx.uninstrument()
    ft_requests.uninstrument()


def _members(baggage: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in baggage.split(",") if item)


def _get_sync(library: str, url: str) -> str:
    if library == "requests":
        return requests.get(url, timeout=10).text
    with httpx.Client(follow_redirects=True) as client:
        return client.get(url).text


def _get_async(url: str) -> str:
    async def main() -> str:
        async with httpx.AsyncClient(follow_redirects=True) as client:
            return (await client.get(url)).text

    return asyncio.run(main())


def _get(library: str, url: str) -> str:
    return _get_async(url) if library == "httpx-async" else _get_sync(library, url)


LIBRARIES = ["requests", "httpx", "httpx-async"]


@pytest.mark.parametrize("library", LIBRARIES)
def test_trusted_host_gets_identity_untrusted_only_tenant(library: str, server: int) -> None:
    """127.0.0.1 (trust domain) sees the user; localhost (a partner) sees only the tenant."""
    with ft.context(tenant="acme", user="ana", purpose="billing"):
        trusted = _members(_get(library, f"http://127.0.0.1:{server}/"))
        partner = _members(_get(library, f"http://localhost:{server}/"))
    assert trusted["flowtrace.tenant"] == "acme"
    assert trusted["flowtrace.user"] == "ana"
    assert partner["flowtrace.tenant"] == "acme"
    assert "flowtrace.user" not in partner
    assert partner["flowtrace.purpose"] == "billing"


@pytest.mark.parametrize("library", LIBRARIES)
def test_redirect_to_untrusted_host_drops_identity(library: str, server: int) -> None:
    """The attacker: a trusted host redirects to a partner; the copied headers lose the user."""
    target = f"http://localhost:{server}/"
    with ft.context(tenant="acme", user="ana"):
        hop = _members(_get(library, f"http://127.0.0.1:{server}/redirect?to={target}"))
    assert hop == {"flowtrace.tenant": "acme"}


@pytest.mark.parametrize("library", LIBRARIES)
def test_uninstrument_restores_the_library(library: str, server: int) -> None:
    """After uninstrument() nothing is injected (and instrument() twice injects once)."""
    ft_httpx.instrument()  # idempotent
    with ft.context(tenant="acme"):
        assert _get(library, f"http://127.0.0.1:{server}/") == "flowtrace.tenant=acme"
    ft_httpx.uninstrument()
    ft_requests.uninstrument()
    assert not ft_httpx.is_instrumented()
    assert not ft_requests.is_instrumented()
    with ft.context(tenant="acme"):
        assert _get(library, f"http://127.0.0.1:{server}/") == ""


def test_foreign_baggage_of_the_caller_is_kept(server: int) -> None:
    """A header the caller set is merged, not overwritten."""
    with ft.context(tenant="acme"), httpx.Client() as client:
        text = client.get(f"http://127.0.0.1:{server}/", headers={"baggage": "team=blue"}).text
    assert _members(text) == {"flowtrace.tenant": "acme", "team": "blue"}


def test_200_concurrent_async_requests_no_crossings(server: int) -> None:
    """200 concurrent tasks, random tenants, one shared AsyncClient: each request carries
    its own task's tenant."""

    async def one(client: httpx.AsyncClient, tenant: str) -> tuple[str, str]:
        with ft.context(tenant=tenant):
            await asyncio.sleep(random.random() / 100)
            response = await client.get(f"http://127.0.0.1:{server}/")
        return tenant, _members(response.text)["flowtrace.tenant"]

    async def main() -> list[tuple[str, str]]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            return await asyncio.gather(
                *(one(client, f"t{random.randrange(40)}") for _ in range(200))
            )

    results = asyncio.run(main())
    assert len(results) == 200
    assert [sent for sent, _ in results] == [got for _, got in results]


def test_threads_with_requests_no_crossings(server: int) -> None:
    """8 threads x 25 requests with random tenants through one Session."""
    session = requests.Session()
    crossings: list[Any] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(25):
            tenant = f"t{rng.randrange(40)}"
            with ft.context(tenant=tenant):
                got = _members(session.get(f"http://127.0.0.1:{server}/", timeout=10).text)
            if got["flowtrace.tenant"] != tenant:
                crossings.append((tenant, got))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert crossings == []


def test_missing_extra_names_it() -> None:
    """Without the library the import says which extra to install."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['httpx'] = None\n"
        "try:\n    import flowtrace.integrations.httpx\n"
        "except ImportError as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "MissingExtraError" in out
    assert "flowtrace-sdk[httpx]" in out
