"""Properties of flowtrace.scrub over generated structures (hypothesis)."""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowtrace
from flowtrace import Scrubber

from . import _scrub_samples as samples

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.binary(max_size=20),
)
structures = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.one_of(st.text(max_size=10), st.integers()), children, max_size=4),
    ),
    max_leaves=25,
)

KINDS = sorted(samples.PLANTS) + list(samples.CONTEXT_PLANTS)
words = st.lists(st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,7}[.,;!?]?", fullmatch=True), max_size=4)


def _secret(kind: str, seed: int) -> tuple[str, str]:
    rnd = random.Random(seed)
    if kind in samples.PLANTS:
        value = samples.PLANTS[kind](rnd)
        return value, value
    return samples.planted_in_context(kind, rnd)


def _strings(obj: Any, seen: set[int] | None = None) -> list[str]:
    """Every string (and decoded bytes) anywhere in obj, keys included."""
    seen = seen if seen is not None else set()
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, bytes):
        return [obj.decode("utf-8", "replace")]
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in _strings(k, seen) + _strings(v, seen)]
    if isinstance(obj, list | tuple | set | frozenset):
        return [s for x in obj for s in _strings(x, seen)]
    return [str(obj)]


@given(structures)
@SETTINGS
def test_scrub_never_raises_and_never_mutates(data: Any) -> None:
    """Any structure scrubs without raising, and the input is left exactly as it was."""
    before = copy.deepcopy(data)
    flowtrace.scrub(data)
    assert data == before


@given(structures)
@SETTINGS
def test_report_only_returns_input_unchanged(data: Any) -> None:
    """Report-only mode returns the very same object."""
    assert Scrubber(report_only=True).scrub(data) is data


@given(
    noise=structures,
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 2**32),
    before=words,
    after=words,
    path=st.lists(
        st.tuples(
            st.sampled_from(["dict", "list", "key", "tuple"]), st.text(min_size=1, max_size=8)
        ),
        max_size=5,
    ),
    in_bytes=st.booleans(),
)
@SETTINGS
def test_planted_secret_never_survives(
    noise: Any,
    kind: str,
    seed: int,
    before: list[str],
    after: list[str],
    path: list[tuple[str, str]],
    in_bytes: bool,
) -> None:
    """A secret of any detector category, planted in free text at any nesting position
    (value, list item, dict key, bytes), is never in the output."""
    text, secret = _secret(kind, seed)
    leaf: Any = " ".join([*before, text, *after])
    if in_bytes:
        leaf = leaf.encode()
    for wrapper, key in reversed(path):
        if wrapper == "dict":
            leaf = {key: leaf, "noise": noise}
        elif wrapper == "key" and isinstance(leaf, str):
            leaf = {leaf: noise}
        elif wrapper == "tuple":
            leaf = (noise, leaf)
        else:
            leaf = [noise, leaf]
    out = flowtrace.scrub(leaf)
    for s in _strings(out):
        assert secret not in s, (kind, secret, s)
