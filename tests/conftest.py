from __future__ import annotations

from collections.abc import Iterator

import pytest

import flowtrace.testing


@pytest.fixture(autouse=True)
def _clean_flowtrace_state() -> Iterator[None]:
    """Every test starts and ends with default flowtrace settings."""
    flowtrace.testing.reset()
    yield
    flowtrace.testing.reset()


@pytest.fixture
def events() -> Iterator[list[flowtrace.FlowEvent]]:
    """Every flow event reported while the test runs."""
    seen: list[flowtrace.FlowEvent] = []
    flowtrace.add_observer(seen.append)
    yield seen
    flowtrace.remove_observer(seen.append)
