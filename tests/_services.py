"""Real servers on this machine: reachable, or skip (fail when FLOWTRACE_REQUIRE_SERVICES=1)."""

from __future__ import annotations

import os
import socket

import pytest

SERVICES = {
    "postgresql": 5432,
    "rabbitmq": 5672,
    "redis": 6379,
    "nats": 4222,
    "mosquitto": 1883,
}


def require_service(name: str, host: str = "127.0.0.1") -> tuple[str, int]:
    """Return (host, port) of ``name`` if it answers; skip or fail otherwise."""
    port = SERVICES[name]
    try:
        with socket.create_connection((host, port), timeout=2):
            return host, port
    except OSError as exc:
        message = f"{name} is not reachable on {host}:{port} ({exc})"
        if os.environ.get("FLOWTRACE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{message} and FLOWTRACE_REQUIRE_SERVICES=1")
        pytest.skip(message)
